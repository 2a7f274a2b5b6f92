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


def test_children_die_with_the_kernel() -> None:
    """A kernel killed with SIGKILL (no cleanup possible) takes its interpreter along."""
    import os
    import signal
    import time

    from jupyter_client.manager import start_new_kernel

    from ai.backend.kernel.procfacts import process_tree

    from tests.toolcheck import require_tool

    require_tool("lua5.4")
    kernellib.install_kernelspecs()
    km, kc = start_new_kernel(kernel_name="lua", startup_timeout=60)
    try:
        kc.execute("while true do end")
        time.sleep(1.0)
        pid = km.provisioner.process.pid
        children = [p for p in process_tree(pid) if p != pid]
        assert children, "the kernel has no interpreter child"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in children):
            time.sleep(0.05)
        alive = []
        for p in children:
            try:
                with open(f"/proc/{p}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                        alive.append(p)
            except OSError:
                pass
        assert not alive, f"children outlived the kernel: {alive}"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
