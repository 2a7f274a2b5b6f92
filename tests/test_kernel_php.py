"""The PHP kernel (eval loop) through jupyter_kernel_test and jupyter_client."""
from tests import kernellib


class PhpKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "php"
    language_name = "php"
    file_extension = ".php"
    tools = ("php",)
    code_hello_world = 'echo "hello, world\\n";'
    code_stderr = 'fwrite(STDERR, "oops\\n");'
    code_generate_error = 'throw new Exception("boom");'
    code_execute_result = [{"code": "1 + 2", "result": "3"}, {"code": "strtoupper('ab')", "result": "'AB'"}]
    completion_samples = [{"text": "str_rep", "matches": {"str_repeat", "str_replace"}}]
    complete_code_samples = ["$x = 1;", "function f() { return 1; }"]
    incomplete_code_samples = ["function f() {", "$a = [1, 2,"]
    invalid_code_samples = ["$x = = 1;"]
    code_interrupt = "while (true) {}"
    code_after_interrupt = 'echo "alive\\n";'
    code_stdin = '$s = trim(fgets(STDIN)); echo "got $s\\n";'

    def test_state_and_fatal_errors(self) -> None:
        """Functions and globals persist; a fatal error is reported and the kernel restarts."""
        self.collect(self.kc.execute("function twice($x) { return 2 * $x; }\n$kept = 21;"))
        reply, out = self.collect(self.kc.execute("echo twice($kept), \"\\n\";"))
        self.assertIn("42", out)
        reply, _ = self.collect(self.kc.execute("function twice($x) { return $x; }"))
        self.assertEqual(reply["content"]["status"], "error")
        reply, out = self.collect(self.kc.execute('echo "alive\\n";'))
        self.assertIn("alive", out)
