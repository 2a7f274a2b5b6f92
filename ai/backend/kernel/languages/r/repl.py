"""`RKernel`: the krunner R kernel's Jupyter side (started by r/kernel.py; docs/languages.md#r).

A cell is written to a file and run by `.krb_run(path)` (driver.R): each expression is evaluated
in the global environment, a visible value is printed into display_data (as IRkernel does), an
error ends the cell with an `error` reply, warnings are shown as they happen, and every page a plot device
opened during the cell is sent as image/png display_data. stdout/stderr stream as printed
(stderr through a FIFO, so `message()` stays stderr); `readline()` reading the console gets an
input_request; an interrupt is ^C to R, which returns to its prompt with its state kept.
"""
from __future__ import annotations

import base64
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from ..kernelbase.common import complete_reply
from ..kernelbase.marker import MarkerReplKernel
from .early import R_ARGS, r_environment, take_early

log = logging.getLogger(__name__)
STDOUT_BATCH = 65536  # characters of whole lines sent as one stream message at most


class RKernel(MarkerReplKernel):
    implementation = "krunner-bridge-r"
    language_info = {"name": "R", "mimetype": "text/x-r-source", "file_extension": ".r",
                     "codemirror_mode": "r", "pygments_lexer": "r"}
    banner = "R (krunner)"
    install_hint = "apt-get install r-base-core"

    def __init__(self, **kwargs: Any) -> None:
        self._held_stdout: list[str] = []
        self._held_size = 0
        self._prompt: tuple[str, re.Pattern[str]] | None = None
        super().__init__(**kwargs)

    def spawn_argv(self) -> list[str]:
        return ["R", *R_ARGS]

    def repl_env(self) -> dict[str, str]:
        plots = self.tmpdir / "plots"
        plots.mkdir(exist_ok=True)
        return r_environment(self.token, str(plots))

    def start_repl(self) -> None:
        early = take_early()  # an R spawned before ipykernel's imports (kernel.py)
        child = early.get("child")
        if child is None or not child.isalive():  # type: ignore[attr-defined]
            if early:
                shutil.rmtree(early["scratch"], ignore_errors=True)
                os.close(early["err_fd"])
            super().start_repl()
            return
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.tmpdir, self.token, self.err_fd = early["scratch"], early["token"], early["err_fd"]
        self.child = child  # type: ignore[assignment]
        self.wait_prompt(emit=False, timeout=self.startup_timeout)

    # -- stdout in one message per read, not per line ------------------------------------------
    # One stream message per line (the base's way) loses output: a cell printing 10,000 lines
    # overruns the 1000-message queues of the iopub PUB/SUB sockets and ZeroMQ drops the rest.
    # Whole lines are held until the end of the read they came in; wait_prompt looks the prompt
    # up once per read, after handing its lines to on_line, so `prompt_re` sends them. Anything
    # else (a partial line, stderr, a value, a plot, an error, an input request) sends them first.
    @property
    def prompt_re(self) -> re.Pattern[str]:  # type: ignore[override]
        self.flush_stdout()
        if self._prompt is None or self._prompt[0] != self.token:
            self._prompt = (self.token, re.compile(re.escape(self.token) + r"[>+] $"))
        return self._prompt[1]

    def stream(self, name: str, text: str) -> None:
        if name == "stdout" and text.endswith("\n"):
            self._held_stdout.append(text)
            self._held_size += len(text)
            if self._held_size >= STDOUT_BATCH:
                self.flush_stdout()
            return
        if name == "stdout" and self._held_stdout:
            self._held_stdout.append(text)
            text = ""
        self.flush_stdout()
        super().stream(name, text)

    def flush_stdout(self) -> None:
        if self._held_stdout:
            text = "".join(self._held_stdout)
            self._held_stdout.clear()
            self._held_size = 0
            super().stream("stdout", text)

    def fail(self, ename: str, evalue: str, traceback: list[str] | None = None) -> dict[str, Any]:
        self.flush_stdout()
        return super().fail(ename, evalue, traceback)

    def feed_stdin(self) -> None:
        self.flush_stdout()
        super().feed_stdin()

    def run_cell(self, code: str) -> dict[str, Any]:
        try:
            return super().run_cell(code)
        finally:
            self.flush_stdout()

    # -- cells ---------------------------------------------------------------------------------
    def cell_command(self, code: str) -> str:
        return f'.krb_run("{self.cell_file(code, ".R")}")'

    def result(self, text: str, mime: str = "text/plain") -> None:
        """A visible value: display_data, as IRkernel sends it (notebooks look the same)."""
        self.flush_stdout()
        if not self.silent:
            self.send_response(self.iopub_socket, "display_data",
                               {"data": {mime: text}, "metadata": {}})

    def on_line(self, line: str) -> str | None:
        marker = self.token + ":plot:"
        idx = line.find(marker)
        if idx < 0:
            return super().on_line(line)
        if idx:
            self.stream("stdout", line[:idx])
        mime, _, path = line[idx + len(marker):].rstrip("\n").partition(":")
        self.display_file(Path(path), mime)
        return None

    def display_file(self, path: Path, mime: str) -> None:
        try:
            data = path.read_bytes()
            path.unlink()
        except OSError as exc:
            log.warning("plot file %s: %s", path, exc)
            return
        self.flush_stdout()
        if not self.silent:
            self.send_response(self.iopub_socket, "display_data", {
                "data": {mime: base64.b64encode(data).decode("ascii"), "text/plain": "<plot>"},
                "metadata": {}})

    def finish_cell(self, stderr_text: str) -> dict[str, Any]:
        """An error reply: evalue is R's message, the traceback what R would have printed."""
        if not self.cell_error:
            return self.ok()
        name, value = self.cell_error
        message, _, shown = value.partition("\x02")
        return self.fail(name, message.rstrip("\n"), shown.rstrip("\n").splitlines() or [message])

    def died_reply(self) -> dict[str, Any]:
        if self.cell_error:  # e.g. an error reported, then R exited
            self.cell_error = (self.cell_error[0], self.cell_error[1].partition("\x02")[2])
        return super().died_reply()

    # -- completion and is_complete: R's own machinery, through the same console ---------------
    def helper_file(self, name: str, text: str) -> Path:
        path = self.tmpdir / name
        path.write_text(text)
        return path

    async def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        line_start = code.rfind("\n", 0, cursor_pos) + 1
        line_end = code.find("\n", cursor_pos)
        line = code[line_start: None if line_end < 0 else line_end]
        path = self.helper_file("complete.R", line)
        answer = self.query(f'.krb_complete("{path}", {cursor_pos - line_start})').split("\n")
        try:
            start = line_start + int(answer[0])
        except ValueError:
            return complete_reply([], cursor_pos, cursor_pos)
        matches = [m for m in answer[1:] if m.strip()]
        return complete_reply(matches, start, cursor_pos)

    def is_complete_status(self, code: str) -> str:
        path = self.helper_file("is_complete.R", code if code.endswith("\n") else code + "\n")
        status = self.query(f'.krb_is_complete("{path}")').strip()
        return status if status in {"complete", "incomplete", "invalid"} else "unknown"
