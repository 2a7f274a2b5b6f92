"""The Rust kernel (rustc, std only) through jupyter_kernel_test and jupyter_client."""
from tests import kernellib


class RustKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "rust"
    language_name = "rust"
    file_extension = ".rs"
    tools = ("rustc",)
    code_hello_world = 'println!("hello, world");'
    code_stderr = 'eprintln!("oops");'
    code_generate_error = 'let x: i32 = "a";'
    completion_samples = [{"text": "printl", "matches": {"println"}}]
    complete_code_samples = ['println!("x");', "fn f() -> i32 { 1 }"]
    incomplete_code_samples = ["fn f() {", "let v = vec![1,"]
    invalid_code_samples = ["fn f() { ) }"]
    code_interrupt = "loop {}"
    code_after_interrupt = 'println!("alive");'
    code_stdin = 'let mut s = String::new();\nstd::io::stdin().read_line(&mut s).unwrap();\nprintln!("got {}", s.trim());'

    def test_items_stay_at_file_level(self) -> None:
        reply, out = self.collect(self.kc.execute(
            "#[derive(Debug)]\nstruct P { x: i32 }\nfn twice(p: &P) -> i32 { 2 * p.x }\n"
            'println!("{}", twice(&P { x: 21 }));'))
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        self.assertIn("42", out)
