"""The C++ kernel (compile-and-run with g++) through jupyter_kernel_test and jupyter_client."""
from tests import kernellib


class CppKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "cpp"
    language_name = "c++"
    file_extension = ".cpp"
    tools = ("g++",)
    code_hello_world = 'std::cout << "hello, world" << std::endl;'
    code_stderr = 'std::cerr << "oops" << std::endl;'
    code_generate_error = "int x = ;"
    completion_samples = [{"text": "cou", "matches": {"cout"}}]
    complete_code_samples = ["int x = 1;", "struct A { int a; };"]
    incomplete_code_samples = ["int f() {", "std::vector<int> v{1, 2"]
    invalid_code_samples = ["int f() { ) }"]
    code_interrupt = "while (true) {}"
    code_after_interrupt = 'std::cout << "alive" << std::endl;'
    code_stdin = 'std::string s; std::cin >> s; std::cout << "got " << s << std::endl;'

    def test_functions_and_types_stay_at_file_level(self) -> None:
        reply, out = self.collect(self.kc.execute(
            "struct P { int x; };\nint twice(P p) { return 2 * p.x; }\ncout << twice(P{21}) << endl;"))
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        self.assertIn("42", out)
