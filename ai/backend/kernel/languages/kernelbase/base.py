"""`LanguageKernel`: what our compiled and REPL kernels share on top of ipykernel's Kernel."""
from __future__ import annotations

import logging
from typing import Any, ClassVar

from ipykernel.kernelbase import Kernel

from .common import bracket_state, complete_reply, error_content, identifiers, token_before

log = logging.getLogger(__name__)


class LanguageKernel(Kernel):
    """Output/error helpers, keyword+history completion and bracket-based is_complete.

    Subclasses set `language_info`, `keywords`, `builtins`; a cell is run by `run_cell`, which
    returns an execute_reply content (use `ok()` / `fail()`).
    """

    implementation = "krunner-bridge"
    implementation_version = "0.1"
    banner = ""
    language_version = ""
    keywords: ClassVar[tuple[str, ...]] = ()
    builtins: ClassVar[tuple[str, ...]] = ()
    # None: is_complete answers 'unknown'; otherwise kwargs for common.bracket_state
    bracket_syntax: ClassVar[dict[str, Any] | None] = {}
    completion_extra_chars: ClassVar[str] = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cells: list[str] = []
        self.silent = False

    @property
    def kernel_info(self) -> dict[str, Any]:
        """ipykernel's, minus the debugger and subshells: our kernels run one cell at a time."""
        info = dict(super().kernel_info)
        info["supported_features"] = []
        return info

    # -- output -----------------------------------------------------------------------------
    def stream(self, name: str, text: str) -> None:
        if text and not self.silent:
            self.send_response(self.iopub_socket, "stream", {"name": name, "text": text})

    def result(self, text: str, mime: str = "text/plain") -> None:
        if not self.silent:
            self.send_response(self.iopub_socket, "execute_result", {
                "execution_count": self.execution_count, "data": {mime: text}, "metadata": {}})

    def ok(self) -> dict[str, Any]:
        return {"status": "ok", "execution_count": self.execution_count, "payload": [],
                "user_expressions": {}}

    def fail(self, ename: str, evalue: str, traceback: list[str] | None = None) -> dict[str, Any]:
        """Publish one `error` message and return the matching execute_reply content."""
        content = error_content(ename, evalue, traceback)
        if not self.silent:
            self.send_response(self.iopub_socket, "error", content)
        return {"status": "error", "execution_count": self.execution_count, **content}

    def interrupted(self) -> dict[str, Any]:
        return self.fail("KeyboardInterrupt", "interrupted", ["KeyboardInterrupt: interrupted"])

    # -- Jupyter handlers ---------------------------------------------------------------------
    async def do_execute(self, code: str, silent: bool, store_history: bool = True,
                         user_expressions: dict | None = None, allow_stdin: bool = False,
                         **_: Any) -> dict[str, Any]:
        self.silent = silent
        # ipykernel 7 only lets raw_input() through when do_execute records the request's flag
        self._allow_stdin = allow_stdin
        if not code.strip():
            return self.ok()
        try:
            reply = self.run_cell(code)
        except KeyboardInterrupt:
            reply = self.interrupted()
        if store_history:
            self.cells.append(code)
        return reply

    def run_cell(self, code: str) -> dict[str, Any]:
        raise NotImplementedError

    def completion_candidates(self, token: str, code: str) -> set[str]:
        """Keywords, builtins and names seen in earlier cells (subclasses add live names)."""
        return {*self.keywords, *self.builtins, *identifiers(self.cells), *identifiers([code])}

    async def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        token, start = token_before(code, cursor_pos, self.completion_extra_chars)
        if not token:
            return complete_reply([], cursor_pos, cursor_pos)
        try:
            # the cell minus the word being completed (it must not complete to itself)
            candidates = self.completion_candidates(token, code[:start] + code[cursor_pos:])
        except Exception:  # a completion must never break the kernel
            log.exception("completion failed")
            candidates = set()
        return complete_reply((c for c in candidates if c.startswith(token)),
                              start, cursor_pos)

    async def do_is_complete(self, code: str) -> dict[str, Any]:
        status = self.is_complete_status(code)
        reply: dict[str, Any] = {"status": status}
        if status == "incomplete":
            reply["indent"] = ""
        return reply

    def is_complete_status(self, code: str) -> str:
        if self.bracket_syntax is None:
            return "unknown"
        return bracket_state(code, **self.bracket_syntax)
