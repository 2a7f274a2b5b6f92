"""`MarkerReplKernel`: a REPL kernel whose interpreter reports results and errors on marker lines."""
from __future__ import annotations

import re
from typing import Any

from .repl import ReplKernel


class MarkerReplKernel(ReplKernel):
    """A REPL whose prelude/driver prints `<token>> ` as prompt and reports on marker lines.

    Marker line: `<token>:<kind>:<name>:<text>` with newlines in text sent as \\x01; kinds are
    `result` (an execute_result) and `error` (name = ename, text = message + traceback).
    """

    @property
    def prompt_re(self) -> re.Pattern[str]:  # type: ignore[override]
        return re.compile(re.escape(self.token) + r"[>+] $")

    def run_cell(self, code: str) -> dict[str, Any]:
        self.cell_error: tuple[str, str] | None = None
        return super().run_cell(code)

    def on_line(self, line: str) -> str | None:
        idx = line.find(self.token + ":")
        if idx < 0:
            return line
        if idx:
            self.stream("stdout", line[:idx])
        try:
            kind, name, value = line[idx + len(self.token) + 1:].rstrip("\n").split(":", 2)
        except ValueError:
            return None
        value = value.replace("\x01", "\n")
        if kind == "result":
            self.result(value)
        elif kind == "error":
            self.cell_error = (name, value)
        return None

    def died_reply(self) -> dict[str, Any]:
        if self.cell_error:
            name, value = self.cell_error
            note = "the interpreter exited; it was restarted (state is lost)"
            return self.fail(name, value.splitlines()[0] if value else name, [*value.splitlines(), note])
        return super().died_reply()

    def finish_cell(self, stderr_text: str) -> dict[str, Any]:
        if self.cell_error:
            name, value = self.cell_error
            lines = value.rstrip("\n").splitlines() or [name]
            evalue = lines[0].removeprefix(f"{name}: ")  # like ipykernel: the message alone
            return self.fail(name, evalue, lines)
        return self.ok()
