"""Jupyter kernel for Octave: octave_kernel (PyPI, metakernel) with errors reported as errors
(`python -m ...octave.kernel -f CONN`).

octave_kernel answers a failing cell with status "ok" and the message as ordinary output; this
subclass holds back Octave's `error: ...` lines and returns them as a real `error`, and writes
plain newlines instead of the pty's CRLF.
"""
from __future__ import annotations

from typing import Any

from metakernel import ExceptionWrapper
from octave_kernel.kernel import OctaveKernel as UpstreamOctaveKernel

from ..kernelbase.common import launch


class OctaveKernel(UpstreamOctaveKernel):
    implementation = "krunner-bridge-octave"

    def do_execute_direct(self, code: str, silent: bool = False) -> Any:
        self._error_lines: list[str] = []
        self._pending = ""
        self._interrupted = False
        if self.wrapper is None:
            self.wrapper = self.makeWrapper()
        if not getattr(self.wrapper.interrupt, "_krb", False):
            original = self.wrapper.interrupt

            def interrupt(*args: Any, **kwargs: Any) -> Any:
                self._interrupted = True
                return original(*args, **kwargs)

            interrupt._krb = True  # type: ignore[attr-defined]
            self.wrapper.interrupt = interrupt
        value = super().do_execute_direct(code, silent)
        if self._pending.strip():
            self._emit(self._pending)
        self._pending = ""
        if self._interrupted:  # upstream answers "ok" after an interrupt
            return ExceptionWrapper("KeyboardInterrupt", "interrupted", ["KeyboardInterrupt: interrupted"])
        if self._error_lines:
            first = self._error_lines[0].removeprefix("error: ")
            return ExceptionWrapper("OctaveError", first, self._error_lines)
        return value

    def _emit(self, text: str) -> None:
        """Send `text` on stdout, keeping whole `error: ...` lines for the error reply."""
        shown = []
        for line in text.splitlines(keepends=True):
            if line.startswith("error: ") or (self._error_lines and line.startswith("error:")):
                self._error_lines.append(line.rstrip("\n"))
            else:
                shown.append(line)
        if shown and not (self._interrupted and not "".join(shown).strip()):
            super().Write("".join(shown))

    def Write(self, message: str) -> None:  # noqa: N802 (metakernel's name)
        if not hasattr(self, "_error_lines"):
            super().Write(message)
            return
        text = self._pending + message.replace("\r\n", "\n")
        cut = text.rfind("\n") + 1
        self._pending = text[cut:]
        if cut:
            self._emit(text[:cut])
        elif self._pending and not "error: ".startswith(self._pending[:7]):
            self._emit(self._pending)  # a prompt without newline (input()): show it now
            self._pending = ""

    def Print(self, *objects: Any, **kwargs: Any) -> None:  # noqa: N802
        objects = tuple(o.replace("\r\n", "\n") if isinstance(o, str) else o for o in objects)
        super().Print(*objects, **kwargs)


if __name__ == "__main__":
    launch(OctaveKernel)
