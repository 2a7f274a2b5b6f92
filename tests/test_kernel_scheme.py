"""The Scheme kernel (MIT/GNU Scheme REPL in a pty) through jupyter_kernel_test and jupyter_client.

MIT Scheme writes errors and output to one console, so there is no stderr sample."""
from tests import kernellib


class SchemeKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "scheme"
    language_name = "scheme"
    file_extension = ".scm"
    tools = ("mit-scheme",)
    code_hello_world = '(display "hello, world")\n(newline)'
    code_generate_error = "(car 5)"
    code_execute_result = [{"code": "(+ 1 2)", "result": "3"}, {"code": "(list 1 2)", "result": "(1 2)"}]
    completion_samples = [{"text": "string-app", "matches": {"string-append", "string-append*"}}]
    complete_code_samples = ["(+ 1 2)", "(define (f x) (* x x))"]
    incomplete_code_samples = ["(define (f x)", '(display "abc']
    invalid_code_samples = [")"]
    code_interrupt = "(define (spin) (spin))\n(spin)"
    code_after_interrupt = '(display "alive")'
    code_stdin = '(display (string-append "got " (read-line)))'

    def test_state_survives_errors(self) -> None:
        self.collect(self.kc.execute("(define kept 42)"))
        reply, _ = self.collect(self.kc.execute("(car 5)"))
        self.assertEqual(reply["content"]["status"], "error")
        reply, out = self.collect(self.kc.execute("(display kept)"))
        self.assertIn("42", out)
