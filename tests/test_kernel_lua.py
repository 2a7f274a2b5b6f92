"""The Lua kernel (lua5.4 -i in a pty) through jupyter_kernel_test and jupyter_client."""
from tests import kernellib


class LuaKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "lua"
    language_name = "lua"
    file_extension = ".lua"
    tools = ("lua5.4",)
    code_hello_world = 'print("hello, world")'
    code_stderr = 'io.stderr:write("oops\\n")'
    code_generate_error = 'error("boom")'
    code_execute_result = [{"code": "1 + 2", "result": "3"}, {"code": "'a' .. 'b'", "result": "ab"}]
    completion_samples = [{"text": "pri", "matches": {"print"}}, {"text": "string.for", "matches": {"string.format"}}]
    complete_code_samples = ["x = 1", "function f() return 1 end"]
    incomplete_code_samples = ["function f()", "t = {1, 2,"]
    invalid_code_samples = ["x = = 1"]
    code_interrupt = "while true do end"
    code_after_interrupt = 'print("alive")'
    code_stdin = 'local s = io.read()\nprint("got " .. s)'

    def test_state_survives_errors(self) -> None:
        self.collect(self.kc.execute("kept = 42"))
        self.collect(self.kc.execute('error("x")'))
        reply, out = self.collect(self.kc.execute("print(kept)"))
        self.assertIn("42", out)
