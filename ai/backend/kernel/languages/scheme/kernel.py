"""Jupyter kernel for Scheme: drives MIT/GNU Scheme's REPL through a pty
(`python -m ...scheme.kernel -f CONN`). `mit-scheme` is started without --quiet: with it there is
no prompt under a pty."""
from __future__ import annotations

import re
from typing import Any

from ..kernelbase.common import launch
from ..kernelbase.repl import ReplKernel

SCHEME_KEYWORDS = ("define lambda let let* letrec if cond case and or when unless begin do set! quote "
                   "quasiquote define-record-type define-syntax syntax-rules let-values "
                   "call-with-current-continuation else").split()
PROMPT_RE = re.compile(r"^(\d+) (\S+)> $")
VALUE_RE = re.compile(r"^;Value: (.*)$", re.S)
QUIET_LINES = (";Unspecified return value", ";No value", ";Quit!", ";Abort!", ";... aborted",
               ";Unassigned variable", ";Loading")


class SchemeKernel(ReplKernel):
    implementation = "krunner-bridge-scheme"
    language_info = {"name": "scheme", "mimetype": "text/x-scheme", "file_extension": ".scm",
                     "codemirror_mode": "scheme", "pygments_lexer": "scheme"}
    banner = "MIT/GNU Scheme"
    keywords = tuple(SCHEME_KEYWORDS)
    install_hint = "Install it with: apt-get install mit-scheme"
    prompt_re = PROMPT_RE
    stderr_pipe = False  # MIT writes everything, errors included, to its console
    completion_extra_chars = "-!?*<>=/+:."
    bracket_syntax = {"line_comments": (";",), "block_comments": (("#|", "|#"),), "quotes": '"',
                      "char_literal_prefix": "#\\"}

    def spawn_argv(self) -> list[str]:
        return ["mit-scheme", "--no-init-file"]

    def cell_command(self, code: str) -> str:
        self.notes: list[str] = []
        self.blank_lines = 0
        self.seen_output = False
        path = self.cell_file(code, ".scm")
        return f'(parameterize ((param:suppress-loading-message? #t)) (load "{path}"))'

    def on_line(self, line: str) -> str | None:
        """REPL chatter (';Value: ...', error blocks) is kept for finish_cell; blank lines that
        MIT adds around it are dropped."""
        text = line.rstrip("\n").replace("\x07", "")
        if text.startswith(";"):
            self.notes.append(text)
            self.blank_lines = 0
            return None
        if text == "" and line.endswith("\n"):
            self.blank_lines += 1
            return None
        shown = "\n" * self.blank_lines if self.seen_output else ""
        self.blank_lines = 0
        self.seen_output = True
        return shown + line

    def finish_cell(self, stderr_text: str) -> dict[str, Any]:
        level = int(self.prompt_match.group(1))
        if level > 1:
            message = [n.lstrip("; ").rstrip() for n in self.notes
                       if not n.startswith((";To continue", "; (RESTART", ";Value"))]
            super().query("(restart 1)")
            evalue = message[0] if message else "error"
            return self.fail("SchemeError", evalue, message or [evalue])
        for note in self.notes:
            m = VALUE_RE.match(note)
            if m:
                self.result(m.group(1))
            elif not note.startswith(QUIET_LINES):
                self.stream("stdout", note + "\n")
        return self.ok()

    def after_interrupt(self, partial: str) -> bool:
        if "Interrupt option" in partial:
            assert self.child
            self.child.send("\x07")  # ^G: back to the top level, definitions kept
            return True
        return False

    def query(self, command: str, timeout: float = 5.0) -> str:
        out = super().query(command, timeout)
        if self.child is not None and int(getattr(self, "prompt_match", PROMPT_RE.match("1 ]=> ")).group(1)) > 1:
            super().query("(restart 1)")  # a helper expression failed: back to level 1
        return out

    def completion_candidates(self, token: str, code: str) -> set[str]:
        expr = ('(for-each (lambda (s) (if (string-prefix? "{0}" s) (begin (write-string s) (newline)))) '
                '(map symbol->string (append (environment-bound-names (nearest-repl/environment)) '
                '(environment-bound-names system-global-environment))))').format(token.replace('"', ""))
        out = self.query(expr)
        names = {ln.strip() for ln in out.splitlines() if ln.strip() and not ln.startswith(";")}
        return names | set(self.keywords)


if __name__ == "__main__":
    launch(SchemeKernel)
