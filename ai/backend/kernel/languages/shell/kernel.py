"""Jupyter kernel for Bash (LANG shell and git): bash_kernel, plus stdin, is_complete and the git
runtime's `%show graph [PATH]` (`python -m ...shell.kernel -f CONN`).

bash_kernel (PyPI) is reused as is for running cells, completion (compgen) and rich output; this
subclass adds what it lacks: a command that reads the terminal (`read`, `cat`, a program's
prompt) gets an input_request instead of hanging, and is_complete asks `bash -n`. A cell that is
one `%show ...` line is the original git runner's terminal command (docs/runtimes.md).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pexpect
from bash_kernel.kernel import BashKernel, IREPLWrapper

from ..kernelbase.common import StdinWatch, error_content, launch
from .gitgraph import GitError, show_graph_bundle

QUIET = 0.05  # seconds without output before checking whether bash's job waits for input
SHOW_RE = re.compile(r"\s*%show([ \t][^\n]*)?\s*\Z")  # one `%show ...` line: the git runtime's command


class StdinAwareWrapper(IREPLWrapper):
    """IREPLWrapper whose incremental wait calls `on_quiet` when the command is silent."""

    def __init__(self, *args: Any, on_quiet: Any = None, **kwargs: Any) -> None:
        self.on_quiet = on_quiet
        super().__init__(*args, **kwargs)

    def _expect_prompt(self, timeout: float | None = -1) -> int:
        if timeout is not None or self.on_quiet is None:
            return super()._expect_prompt(timeout)
        patterns = [re.compile(x) for x in (self.ps1_re, self.ps2_re, "\r?\n", "\r")] + [pexpect.TIMEOUT]
        while True:
            pos = self.child.expect_list(patterns, timeout=QUIET)
            if pos == 2:
                self.line_output_callback(self.child.before + "\n")
            elif pos == 3:
                self.line_output_callback(self.child.before + "\r")
            elif pos == 4:
                self.on_quiet()
            else:
                if self.child.before:
                    self.line_output_callback(self.child.before)
                return pos


class ShellKernel(BashKernel):
    implementation = "krunner-bridge-shell"

    def _start_bash(self) -> None:
        super()._start_bash()
        # same child, same prompts: re-wrap it so the incremental wait can answer stdin reads
        old = self.bashwrapper
        wrapper = StdinAwareWrapper.__new__(StdinAwareWrapper)
        wrapper.__dict__.update(old.__dict__)
        wrapper.on_quiet = self._on_quiet
        self.bashwrapper = wrapper
        self._watch = StdinWatch(old.child.pid)

    def _on_quiet(self) -> None:
        from ipykernel.kernelbase import StdinNotImplementedError  # type: ignore[attr-defined]

        child = self.bashwrapper.child
        if not self._watch.waiting():
            return
        pending = child.buffer
        if pending:  # e.g. the text of `read -p`: show it before asking (pexpect keeps it twice)
            child._buffer = child.buffer_type()
            child._before = child.buffer_type()
            if not self.silent:
                self.send_response(self.iopub_socket, "stream", {"name": "stdout", "text": pending})
        try:
            line = self.raw_input("")
        except (StdinNotImplementedError, EOFError):
            child.sendeof()
            return
        child.sendline(line)
        self._watch.last = None

    def do_execute(self, code: str, silent: bool, store_history: bool = True,
                   user_expressions: dict | None = None, allow_stdin: bool = False) -> dict[str, Any]:
        # ipykernel 7 only lets raw_input() through when do_execute records the request's flag
        self._allow_stdin = allow_stdin
        if SHOW_RE.match(code):
            return self._show(code.strip()[1:], silent)
        reply = super().do_execute(code, silent, store_history, user_expressions, allow_stdin)
        if reply.get("status") == "abort":  # interrupted: report it like our other kernels do
            content = {"ename": "KeyboardInterrupt", "evalue": "interrupted",
                       "traceback": ["KeyboardInterrupt: interrupted"]}
            if not silent:
                self.send_response(self.iopub_socket, "error", content)
            reply = {"status": "error", "execution_count": self.execution_count, **content}
        elif reply.get("status") == "error" and reply.get("ename") == "":
            status = reply.get("evalue", "")
            reply = {**reply, "ename": "ExitCode", "evalue": f"exit status {status}",
                     "traceback": reply.get("traceback") or [f"exit status {status}"]}
        return reply

    def _show(self, line: str, silent: bool) -> dict[str, Any]:
        """`%show graph [PATH]`: the commit graph as media (PATH is relative to bash's cwd)."""
        try:
            cwd = Path(f"/proc/{self.bashwrapper.child.pid}/cwd").resolve()
        except OSError:
            cwd = Path.cwd()
        try:
            bundle = show_graph_bundle(line, cwd)
        except GitError as e:
            lines = str(e).splitlines() or ["git failed"]
            content = error_content("GitError", lines[-1], lines)
            if not silent:
                self.send_response(self.iopub_socket, "error", content)
            return {"status": "error", "execution_count": self.execution_count, **content}
        if not silent:
            self.send_response(self.iopub_socket, "display_data", {"data": bundle, "metadata": {}})
        return {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}

    def send_response(self, stream: Any, msg_type: str, content: Any = None, *args: Any, **kwargs: Any) -> Any:
        # bash_kernel reports a failing command as ename "" / evalue "<status>": name it
        if msg_type == "error" and isinstance(content, dict) and content.get("ename") == "":
            status = content.get("evalue", "")
            content = {**content, "ename": "ExitCode", "evalue": f"exit status {status}",
                       "traceback": content.get("traceback") or [f"exit status {status}"]}
        return super().send_response(stream, msg_type, content, *args, **kwargs)

    def do_is_complete(self, code: str) -> dict[str, Any]:
        proc = subprocess.run(["bash", "-n"], input=code, capture_output=True, text=True)
        if proc.returncode == 0:
            return {"status": "complete"}
        if "unexpected end of file" in proc.stderr:
            return {"status": "incomplete", "indent": ""}
        return {"status": "invalid"}


if __name__ == "__main__":
    launch(ShellKernel)
