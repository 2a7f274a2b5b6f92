"""The C kernel (compile-and-run with gcc) through jupyter_kernel_test and jupyter_client."""
from tests import kernellib


class CKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "c"
    language_name = "c"
    file_extension = ".c"
    tools = ("gcc",)
    code_hello_world = 'printf("hello, world\\n");'
    code_stderr = 'fprintf(stderr, "oops\\n");'
    code_generate_error = "int x = ;"
    completion_samples = [{"text": "prin", "matches": {"printf"}}]
    complete_code_samples = ['printf("x");', "int main(void) { return 0; }"]
    incomplete_code_samples = ["int f(void) {", 'printf("x']
    invalid_code_samples = ["int f(void) { ) }"]
    code_interrupt = "while (1) {}"
    code_after_interrupt = 'puts("alive");'
    code_stdin = 'char s[64]; if (scanf("%63s", s) == 1) printf("got %s\\n", s);'

    def test_whole_program_and_functions(self) -> None:
        """A cell with main() runs as is; functions in a statement cell stay at file level."""
        reply, out = self.collect(self.kc.execute(
            '#include <stdio.h>\nint main(void) { printf("whole\\n"); return 0; }'))
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertIn("whole", out)
        reply, out = self.collect(self.kc.execute('int sq(int x) { return x * x; }\nprintf("%d\\n", sq(7));'))
        self.assertIn("49", out)

    def test_exit_code_is_an_error(self) -> None:
        reply, _ = self.collect(self.kc.execute("return 3;"))
        self.assertEqual(reply["content"]["status"], "error")
        self.assertIn("3", reply["content"]["evalue"])

    def test_diagnostics_point_at_the_cell(self) -> None:
        """Compiler messages name the cell's line, not the wrapped program's."""
        reply, _ = self.collect(self.kc.execute("int a = 1;\nint b = ;"))
        self.assertEqual(reply["content"]["status"], "error")
        self.assertTrue(reply["content"]["evalue"].startswith("cell:2:"), reply["content"]["evalue"])
