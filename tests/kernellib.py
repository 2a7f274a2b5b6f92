"""Shared machinery of the tests/test_kernel_<lang>.py files.

`LanguageKernelTests` is jupyter_kernel_test's conformance suite plus interrupt and stdin tests,
run against OUR kernelspecs: the repository's kernelspecs/<name> are linked into the test
session's JUPYTER_DATA_DIR (set by conftest), which jupyter_client searches first.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import time
import unittest
from collections.abc import Iterator
from pathlib import Path
from queue import Empty
from typing import Any, ClassVar

import jupyter_kernel_test as jkt
from jupyter_client.manager import start_new_kernel

from tests.toolcheck import require_module, require_tool

REPO = Path(__file__).resolve().parent.parent
OUR_SPECS = ("c", "cpp", "golang", "rust", "java", "nodejs", "lua", "php", "r", "julia", "octave",
             "haskell", "scheme", "shell")
TIMEOUT = 30


def install_kernelspecs() -> Path:
    """Link the repository's kernelspecs into $JUPYTER_DATA_DIR/kernels (an isolated tmp dir)."""
    data_dir = os.environ.get("JUPYTER_DATA_DIR")
    if not data_dir or Path(data_dir).resolve() == Path.home().resolve() / ".local/share/jupyter":
        raise RuntimeError("JUPYTER_DATA_DIR must point at an isolated directory (tests/conftest.py)")
    kernels = Path(data_dir) / "kernels"
    kernels.mkdir(parents=True, exist_ok=True)
    for name in OUR_SPECS:
        link = kernels / name
        if not link.exists():
            link.symlink_to(REPO / "kernelspecs" / name, target_is_directory=True)
    # our kernels are `python -m ai.backend.kernel...`: importable from the checkout too
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if str(REPO) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, paths)])
    return kernels


def missing_tool(tools: tuple[str, ...]) -> str | None:
    for tool in tools:
        if shutil.which(tool) is None:
            return tool
    return None


class LanguageKernelTests(jkt.KernelTests):
    """jupyter_kernel_test's suite + interrupt and stdin through jupyter_client."""

    tools: ClassVar[tuple[str, ...]] = ()  # executables the kernel needs; the class skips without them
    modules: ClassVar[tuple[str, ...]] = ()  # Python modules the kernel needs
    code_interrupt = ""  # a cell that runs until interrupted
    code_after_interrupt = ""  # must print `after_interrupt_output`, proving the kernel still works
    after_interrupt_output = "alive"
    interrupt_status: ClassVar[tuple[str, ...]] = ("error",)
    code_stdin = ""  # reads one line from stdin and prints "got <line>"
    stdin_output = "got hello"

    @classmethod
    def setUpClass(cls) -> None:
        require_tool(*cls.tools)  # skips on a developer machine, FAILS under CI (tests/toolcheck.py)
        require_module(*cls.modules)
        install_kernelspecs()
        super().setUpClass()

    # -- helpers ----------------------------------------------------------------------------
    def collect(self, msg_id: str, timeout: float = TIMEOUT) -> tuple[dict[str, Any], str]:
        """execute_reply of `msg_id` and all stdout it produced (until its idle status)."""
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        stdout = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=1)
            except Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                stdout.append(msg["content"]["text"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        return reply, "".join(stdout)

    # -- tests ------------------------------------------------------------------------------
    def test_interrupt(self) -> None:
        """A runaway cell is interrupted and the kernel answers the next cell."""
        if not self.code_interrupt:
            raise unittest.SkipTest("no interrupt sample")
        self.flush_channels()
        msg_id = self.kc.execute(self.code_interrupt)
        # wait until the cell really runs (busy), then a little longer, then interrupt
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = self.kc.get_iopub_msg(timeout=TIMEOUT)
            if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                    and msg["content"]["execution_state"] == "busy"):
                break
        time.sleep(1.5)
        started = time.monotonic()
        self.km.interrupt_kernel()
        reply, _ = self.collect(msg_id)
        self.assertIn(reply["content"]["status"], self.interrupt_status)
        self.assertLess(time.monotonic() - started, 10, "the interrupt took too long")
        reply, out = self.collect(self.kc.execute(self.code_after_interrupt))
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        self.assertIn(self.after_interrupt_output, out)

    def test_stdin(self) -> None:
        """A cell reading stdin gets its line through input_request/input_reply."""
        if not self.code_stdin:
            raise unittest.SkipTest("no stdin sample")
        self.flush_channels()
        msg_id = self.kc.execute(self.code_stdin, allow_stdin=True)
        request = self.kc.get_stdin_msg(timeout=TIMEOUT)
        self.assertEqual(request["msg_type"], "input_request")
        self.kc.input("hello")
        reply, out = self.collect(msg_id)
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        self.assertIn(self.stdin_output, out)


@contextlib.contextmanager
def running_kernel(name: str, startup_timeout: float = 60) -> Iterator[Any]:
    """A real kernel of our kernelspec `name` with a blocking client, shut down afterwards."""
    install_kernelspecs()
    km, client = start_new_kernel(kernel_name=name, startup_timeout=startup_timeout)
    try:
        yield client
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


def run_cell(kc: Any, code: str, timeout: float = 30) -> tuple[dict[str, Any], str]:
    """Execute `code`; return the reply content and the stream text it printed."""
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    reply = kc.execute_interactive(code, timeout=timeout, output_hook=hook)
    return reply["content"], "".join(out)

