"""The Java kernel (javac + java) through jupyter_kernel_test and jupyter_client."""
from tests import kernellib


class JavaKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "java"
    language_name = "java"
    file_extension = ".java"
    tools = ("javac", "java")
    code_hello_world = 'System.out.println("hello, world");'
    code_stderr = 'System.err.println("oops");'
    code_generate_error = 'int x = "a";'
    completion_samples = [{"text": "Syst", "matches": {"System"}}]
    complete_code_samples = ["int x = 1;", "class A { }"]
    incomplete_code_samples = ["void f() {", 'String s = "abc']
    invalid_code_samples = ["void f() { ) }"]
    code_interrupt = "while (true) {}"
    code_after_interrupt = 'System.out.println("alive");'
    code_stdin = 'Scanner sc = new Scanner(System.in);\nSystem.out.println("got " + sc.nextLine());'

    def test_methods_and_whole_programs(self) -> None:
        reply, out = self.collect(self.kc.execute("int twice(int x) { return 2 * x; }\nSystem.out.println(twice(21));"))
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        self.assertIn("42", out)
        reply, out = self.collect(self.kc.execute(
            'public class Hello {\n  public static void main(String[] a) { System.out.println("whole"); }\n}'))
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        self.assertIn("whole", out)

    def test_diagnostics_point_at_the_cell(self) -> None:
        reply, _ = self.collect(self.kc.execute('int a = 1;\nint b = "x";'))
        self.assertEqual(reply["content"]["status"], "error")
        self.assertTrue(reply["content"]["evalue"].startswith("cell:2:"), reply["content"]["evalue"])
