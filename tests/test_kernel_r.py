"""The `r` kernelspec (our R kernel, ai/backend/kernel/languages/r) through jupyter_kernel_test and
jupyter_client, plus what R users rely on: plots, warnings, errors, interrupts that keep state,
input, completion of their own names, their profile; and IRkernel still reachable as `ir`."""
from __future__ import annotations

import base64
import os
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any

from tests import kernellib
from tests.toolcheck import missing

TIMEOUT = 30
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cell(kc: Any, code: str, *, stdin: str | None = None, timeout: float = TIMEOUT
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """execute_reply content and every iopub message of the cell (until idle)."""
    msgs: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    if stdin is not None:
        kwargs = {"allow_stdin": True, "stdin_hook": lambda m: (msgs.append(m), kc.input(stdin))}
    reply = kc.execute_interactive(code, output_hook=msgs.append, timeout=timeout, **kwargs)
    return reply["content"], msgs


def texts(msgs: list[dict[str, Any]], name: str) -> str:
    return "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and m["content"]["name"] == name)


def displays(msgs: list[dict[str, Any]], mime: str) -> list[str]:
    return [m["content"]["data"][mime] for m in msgs
            if m["msg_type"] == "display_data" and mime in m["content"]["data"]]


class RKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "r"
    language_name = "R"
    file_extension = ".r"
    tools = ("R",)
    code_hello_world = 'cat("hello, world\\n")'
    code_stderr = 'message("oops")'
    code_generate_error = 'stop("boom")'
    code_display_data = [{"code": "1 + 2", "mime": "text/plain"}]
    completion_samples = [{"text": "Sys.Dat", "matches": {"Sys.Date"}}]
    complete_code_samples = ["1 + 1", "f <- function(x) x", "x <- 'a'\ny <- 2"]
    incomplete_code_samples = ["f <- function(x) {", "c(1, 2,", "s <- 'open"]
    invalid_code_samples = ["1 +)"]
    code_interrupt = "while (TRUE) {}"
    code_after_interrupt = 'cat("alive\\n")'
    interrupt_status = ("error",)
    code_stdin = 's <- readline()\ncat("got", s, "\\n")'

    @classmethod
    def setUpClass(cls) -> None:
        # the user's profile (R_PROFILE_USER) is still sourced: our driver takes its place
        cls.profile_dir = tempfile.TemporaryDirectory()
        profile = Path(cls.profile_dir.name, "Rprofile")
        profile.write_text('from_profile <- "profile ran"\n')
        saved = os.environ.get("R_PROFILE_USER")
        os.environ["R_PROFILE_USER"] = str(profile)
        try:
            super().setUpClass()
        finally:
            if saved is None:
                os.environ.pop("R_PROFILE_USER", None)
            else:
                os.environ["R_PROFILE_USER"] = saved

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        cls.profile_dir.cleanup()

    def test_r_kernel_is_ours(self) -> None:
        self.flush_channels()
        self.kc.kernel_info()
        info = self.kc.get_shell_msg(timeout=TIMEOUT)["content"]
        self.assertEqual(info["implementation"], "krunner-bridge-r")
        self.assertEqual(info["language_info"]["name"], "R")

    def test_user_profile_was_sourced(self) -> None:
        reply, msgs = run_cell(self.kc, "cat(from_profile)")
        self.assertEqual(reply["status"], "ok", reply)
        self.assertEqual(texts(msgs, "stdout"), "profile ran")

    def test_plot_is_sent_as_png_and_only_when_drawn(self) -> None:
        reply, msgs = run_cell(self.kc, "plot(1:10); hist(rnorm(50))")
        self.assertEqual(reply["status"], "ok", reply)
        pngs = displays(msgs, "image/png")
        self.assertEqual(len(pngs), 2, msgs)  # one per page
        self.assertTrue(all(base64.b64decode(p).startswith(PNG_MAGIC) for p in pngs))
        reply, msgs = run_cell(self.kc, "grid::grid.newpage(); grid::grid.rect()")
        self.assertEqual(len(displays(msgs, "image/png")), 1, msgs)
        for code in ("dev.new(); plot(1); dev.new(); plot(2)", "plot(1); invisible(dev.off()); plot(2)"):
            reply, msgs = run_cell(self.kc, code)
            self.assertEqual(len(displays(msgs, "image/png")), 2, (code, msgs))
        reply, msgs = run_cell(self.kc, "x <- 1; x")
        self.assertEqual(displays(msgs, "image/png"), [])
        self.assertEqual(displays(msgs, "text/plain"), ["[1] 1"])

    def test_a_device_the_user_opened_stays_open(self) -> None:
        pdf = Path(self.profile_dir.name, "mine.pdf")
        reply, msgs = run_cell(self.kc, f'pdf("{pdf}"); d <- dev.cur(); plot(1)')
        self.assertEqual(displays(msgs, "image/png"), [])
        reply, msgs = run_cell(self.kc, "cat(dev.cur() == d); invisible(dev.off())")
        self.assertEqual(texts(msgs, "stdout"), "TRUE")
        self.assertGreater(pdf.stat().st_size, 0)

    def test_output_streams_as_printed(self) -> None:
        seen: list[float] = []
        start = time.monotonic()
        msgs: list[dict[str, Any]] = []

        def hook(msg: dict[str, Any]) -> None:
            msgs.append(msg)
            if msg["msg_type"] == "stream":
                seen.append(time.monotonic() - start)

        self.kc.execute_interactive('for (i in 1:3) { cat(i, "\\n"); Sys.sleep(0.4) }',
                                    output_hook=hook, timeout=TIMEOUT)
        self.assertEqual(texts(msgs, "stdout").split(), ["1", "2", "3"])
        self.assertLess(seen[0], 0.4 * 2, "the first line waited for the end of the cell")

    def test_large_output_arrives_whole(self) -> None:
        """100,000 lines: none lost (one message per line would overrun iopub's queues)."""
        reply, msgs = run_cell(self.kc, 'cat(sprintf("line %06d", 1:100000), sep = "\\n"); cat("end")',
                               timeout=120)
        self.assertEqual(reply["status"], "ok", reply)
        lines = texts(msgs, "stdout").split("\n")
        self.assertEqual(lines, [f"line {i:06d}" for i in range(1, 100001)] + ["end"])
        self.assertLess(len(msgs), 2000)

    def test_errors_and_warnings(self) -> None:
        reply, msgs = run_cell(self.kc, 'f <- function() stop("deep"); cat("before\\n"); f(); cat("after")')
        self.assertEqual(reply["status"], "error")
        self.assertEqual((reply["ename"], reply["evalue"]), ("Error", "deep"))
        self.assertIn("Error in f() : deep", reply["traceback"])
        self.assertEqual(texts(msgs, "stdout"), "before\n")  # the cell stopped at the error
        reply, msgs = run_cell(self.kc, 'warning("careful"); 7')
        self.assertEqual(reply["status"], "ok", reply)
        self.assertIn("careful", texts(msgs, "stderr"))
        self.assertEqual(displays(msgs, "text/plain"), ["[1] 7"])
        reply, _ = run_cell(self.kc, "1 +)")
        self.assertEqual(reply["ename"], "ParseError")
        self.assertIn("unexpected ')'", "\n".join(reply["traceback"]))

    def test_interrupt_keeps_state(self) -> None:
        run_cell(self.kc, "kept <- 41")
        timer = threading.Timer(1.5, self.km.interrupt_kernel)
        timer.start()
        reply, _ = run_cell(self.kc, "n <- 0; repeat n <- n + 1")
        timer.join()
        self.assertEqual(reply["status"], "error")
        reply, msgs = run_cell(self.kc, "cat(kept + 1, n > 0)")
        self.assertEqual(texts(msgs, "stdout"), "42 TRUE")

    def test_input_through_the_stdin_channel(self) -> None:
        for code in ('s <- readLines("stdin", n = 1)', "s <- readLines(stdin(), n = 1)",
                     's <- scan(what = "", n = 1, quiet = TRUE)'):
            reply, msgs = run_cell(self.kc, f'{code}; cat("got", s)', stdin="hello")
            self.assertEqual(reply["status"], "ok", (code, reply))
            self.assertTrue(any(m["msg_type"] == "input_request" for m in msgs), code)
            self.assertEqual(texts(msgs, "stdout").rsplit("got", 1)[-1], " hello", code)

    def test_completion_sees_the_users_names(self) -> None:
        run_cell(self.kc, "my_long_variable <- 1; df <- data.frame(alpha = 1)")
        for code, match in (("my_long_v", "my_long_variable"), ("x <- 1\ny <- df$al", "df$alpha")):
            self.kc.complete(code, len(code))
            content = self.kc.get_shell_msg(timeout=TIMEOUT)["content"]
            self.assertIn(match, content["matches"])
            self.assertEqual(code[content["cursor_start"]:], match[:len(code) - content["cursor_start"]])

    def test_quitting_r_restarts_it_and_says_so(self) -> None:
        run_cell(self.kc, "before_quit <- 1")
        reply, _ = run_cell(self.kc, "quit()")
        self.assertEqual(reply["status"], "error")
        self.assertIn("restarted", reply["evalue"])
        reply, msgs = run_cell(self.kc, "cat(exists('before_quit'), 1 + 1)")
        self.assertEqual((reply["status"], texts(msgs, "stdout")), ("ok", "FALSE 2"))


class IRkernelStillAvailable(unittest.TestCase):
    """The `ir` kernelspec starts IRkernel (richer output) for users who want it."""

    def test_ir_kernelspec_runs_irkernel(self) -> None:
        from jupyter_client.manager import start_new_kernel

        kernellib.require_tool("R")
        if subprocess.run(["R", "--slave", "-e", "library(IRkernel)"], capture_output=True).returncode:
            missing("IRkernel", "Debian r-cran-irkernel")  # skips, or fails under CI
        kernels = kernellib.install_kernelspecs()
        if not (kernels / "ir").exists():
            (kernels / "ir").symlink_to(kernellib.REPO / "kernelspecs" / "ir", target_is_directory=True)
        km, kc = start_new_kernel(kernel_name="ir", startup_timeout=60)
        try:
            self.assertEqual(km.kernel_spec.display_name, "R (IRkernel)")
            reply, msgs = run_cell(kc, "head(data.frame(a = 1:2))")
            self.assertEqual(reply["status"], "ok", reply)
            self.assertTrue(displays(msgs, "text/html"), msgs)  # IRkernel's rich output
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
