"""The Node.js kernel (vm eval loop) through jupyter_kernel_test and jupyter_client."""
from queue import Empty

from tests import kernellib


class NodeKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "nodejs"
    language_name = "javascript"
    file_extension = ".js"
    tools = ("node",)
    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("oops")'
    code_generate_error = 'throw new Error("boom")'
    code_execute_result = [{"code": "1 + 2", "result": "3"}, {"code": "[1, 2].map((x) => x * 2)", "result": "[ 2, 4 ]"}]
    completion_samples = [{"text": "consol", "matches": {"console"}}, {"text": "Math.flo", "matches": {"Math.floor"}}]
    complete_code_samples = ["let x = 1", "function f() { return 1 }"]
    incomplete_code_samples = ["function f() {", "[1, 2,"]
    invalid_code_samples = ["let = ;"]
    code_interrupt = "while (true) {}"
    code_after_interrupt = 'console.log("alive")'
    code_stdin = ('const b = Buffer.alloc(100); const n = require("fs").readSync(0, b);\n'
                  'console.log("got " + b.toString("utf8", 0, n).trim())')

    def test_state_and_async(self) -> None:
        """Globals persist between cells; timers and awaited promises finish inside their cell."""
        self.collect(self.kc.execute("var kept = 41"))
        reply, out = self.collect(self.kc.execute('setTimeout(() => console.log("later", kept + 1), 200)'))
        self.assertIn("later 42", out)
        reply, _ = self.collect(self.kc.execute("await new Promise((r) => setTimeout(r, 50))"))
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])

    def test_an_awaited_timer_is_not_a_request_for_input(self) -> None:
        """A cell awaiting a timer leaves node idle in its event loop, whose epoll set holds the
        driver's command channel (libuv's own reopened tty, not fd 0): no input_request."""
        reply, out = self.collect(self.kc.execute(
            "await new Promise((r) => setTimeout(r, 1500)); console.log('done')", allow_stdin=True), timeout=20)
        self.assertEqual((reply["content"]["status"], out), ("ok", "done\n"))
        with self.assertRaises(Empty):
            self.kc.get_stdin_msg(timeout=0.2)
