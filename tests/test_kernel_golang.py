"""The Go kernel (go build + run) through jupyter_kernel_test and jupyter_client."""
from tests import kernellib


class GoKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "golang"
    language_name = "go"
    file_extension = ".go"
    tools = ("go",)
    code_hello_world = 'fmt.Println("hello, world")'
    code_stderr = 'fmt.Fprintln(os.Stderr, "oops")'
    code_generate_error = "x := "
    completion_samples = [{"text": "Printl", "matches": {"Println"}}]
    complete_code_samples = ["fmt.Println(1)", "func f() int { return 1 }"]
    incomplete_code_samples = ["func f() {", "fmt.Println(1,"]
    invalid_code_samples = ["func f() { ) }"]
    code_interrupt = "for {}"
    code_after_interrupt = 'fmt.Println("alive")'
    code_stdin = 'var s string\nfmt.Scanln(&s)\nfmt.Println("got", s)'

    def test_whole_program(self) -> None:
        reply, out = self.collect(self.kc.execute(
            'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("whole")\n}\n'))
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        self.assertIn("whole", out)
