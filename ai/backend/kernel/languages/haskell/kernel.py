"""Jupyter kernel for Haskell: drives `ghci` through a pty (`python -m ...haskell.kernel -f CONN`).

A cell is cut into top-level chunks; consecutive declarations share one `:{ ... :}` block (so a
signature and its equations stay together), every statement gets its own; the blocks run with
`:script`, which stops at the first error.
"""
from __future__ import annotations

import re
from typing import Any

from ..kernelbase.common import launch
from ..kernelbase.repl import ReplKernel

HS_KEYWORDS = ("case class data default deriving do else foreign if import in infix infixl infixr instance "
               "let module newtype of then type where qualified as hiding").split()
DECL_RE = re.compile(r"^(data|type|newtype|class|instance|deriving|infix[lr]?)\b"
                     r"|^[a-z_][\w']*(\s*,\s*[a-z_][\w']*)*\s*::"
                     r"|^[a-z_][\w']*(\s+[^=\n]*?)?\s*(\|[^=\n]*)?=(?!=)"
                     r"|^\([^)]*\)\s*::")
ERROR_RE = re.compile(r":\d+:\d+(-\d+)?: error|^\*\*\* Exception|<interactive>:.*error", re.M)


def chunks(code: str) -> list[tuple[bool, int, list[str]]]:
    """Top-level chunks of a cell as (is_declaration, first line number, lines); a chunk starts
    at column 0 and runs until the next one (indented, blank and comment lines included)."""
    result: list[tuple[bool, int, list[str]]] = []
    for number, line in enumerate(code.splitlines(), 1):
        if line.strip() and not line[0].isspace() and not line.lstrip().startswith("--"):
            decl = bool(DECL_RE.match(line)) and not line.startswith("import ")
            result.append((decl, number, [line]))
        elif result:
            result[-1][2].append(line)
        elif line.strip():
            result.append((False, number, [line]))
    return result


def script(code: str) -> tuple[str, list[int | None]]:
    """The :script file for a cell, and for each of its lines (1-based) the cell's line."""
    blocks: list[tuple[int, list[str]]] = []
    pending: tuple[int, list[str]] | None = None
    for decl, number, lines in chunks(code):
        if decl:  # consecutive declarations share a block (they are contiguous in the cell)
            pending = (pending[0], pending[1] + lines) if pending else (number, list(lines))
            continue
        if pending:
            blocks.append(pending)
            pending = None
        blocks.append((number, lines))
    if pending:
        blocks.append(pending)
    out: list[str] = []
    origin: list[int | None] = [None]  # index 0 unused: line numbers start at 1
    for number, lines in blocks:
        wrap = not lines[0].startswith((":", "import "))
        if wrap:
            out.append(":{")
            origin.append(None)
        out.extend(lines)
        origin.extend(range(number, number + len(lines)))
        if wrap:
            out.append(":}")
            origin.append(None)
    return "".join(line + "\n" for line in out), origin


class HaskellKernel(ReplKernel):
    implementation = "krunner-bridge-haskell"
    language_info = {"name": "haskell", "mimetype": "text/x-haskell", "file_extension": ".hs",
                     "codemirror_mode": "haskell", "pygments_lexer": "haskell"}
    banner = "Haskell (ghci)"
    keywords = tuple(HS_KEYWORDS)
    install_hint = "Install it with: apt-get install ghc"
    completion_extra_chars = "'."
    bracket_syntax = {"line_comments": ("--",), "block_comments": (("{-", "-}"),), "quotes": '"'}

    @property
    def prompt_re(self) -> re.Pattern[str]:  # type: ignore[override]
        return re.compile(re.escape(self.token) + r"[>+] $")

    def spawn_argv(self) -> list[str]:
        setup = self.tmpdir / "setup.ghci"
        setup.write_text(f':set prompt "{self.token}> "\n:set prompt-cont "{self.token}+ "\n')
        return ["ghci", "-v0", "-ignore-dot-ghci", "-ghci-script", str(setup)]

    def cell_command(self, code: str) -> str:
        text, self.origin = script(code)
        return f":script {self.cell_file(text, '.ghci')}"

    def clean_stderr(self, text: str) -> str:
        """Diagnostics point at the cell's lines, not at our generated :script."""
        origin = getattr(self, "origin", [None])

        def cell_line(n: str) -> str:
            i = int(n)
            return str(origin[i]) if i < len(origin) and origin[i] is not None else n

        text = super().clean_stderr(text)
        if not re.search(r"\bcell\d+\.ghci:\d+:", text):
            return text  # the program's own stderr: left alone
        text = re.sub(r"\bcell\d+\.ghci:(\d+):", lambda m: f"cell:{cell_line(m.group(1))}:", text)
        return re.sub(r"(?m)^(\s*)(\d+)( \|)", lambda m: m.group(1) + cell_line(m.group(2)) + m.group(3), text)

    def begin_cell(self) -> None:
        self.error_seen = False

    def on_stderr(self, text: str) -> str | None:
        """Stream warnings and the program's own stderr; an error block becomes the `error`."""
        if self.error_seen:
            return None
        m = ERROR_RE.search(text)
        if m:
            self.error_seen = True
            text = text[: text.rfind("\n", 0, m.start()) + 1]
        return text if text.strip() else None

    def finish_cell(self, stderr_text: str) -> dict[str, Any]:
        if ERROR_RE.search(stderr_text):
            # the full text is already on stderr; the error carries its first message
            lines = [ln for ln in stderr_text.splitlines() if ln.strip()]
            i = next((i for i, ln in enumerate(lines) if ERROR_RE.search(ln)), 0)
            first = lines[i]
            ename = "Exception" if first.startswith("***") else "CompileError"
            evalue = first.removeprefix("*** Exception: ")
            if first.rstrip().endswith("error:") and i + 1 < len(lines):
                evalue = lines[i + 1].strip()
            block = self.clean_stderr("\n".join(lines[i:])).splitlines()
            return self.fail(ename, evalue, block)
        return self.ok()

    def completion_candidates(self, token: str, code: str) -> set[str]:
        out = self.query(f':complete repl "{token}"')
        names = {ln.strip().strip('"') for ln in out.splitlines()[1:] if ln.strip().startswith('"')}
        return names | {k for k in self.keywords if k.startswith(token)}


if __name__ == "__main__":
    launch(HaskellKernel)
