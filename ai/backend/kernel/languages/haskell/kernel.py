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


def chunks(code: str) -> list[tuple[bool, str]]:
    """Top-level chunks of a cell as (is_declaration, text); a chunk starts at column 0."""
    result: list[tuple[bool, list[str]]] = []
    for line in code.splitlines():
        if line.strip() and not line[0].isspace() and not line.lstrip().startswith("--"):
            decl = bool(DECL_RE.match(line)) and not line.startswith("import ")
            result.append((decl, [line]))
        elif result:
            result[-1][1].append(line)
        elif line.strip():
            result.append((False, [line]))
    return [(decl, "\n".join(lines)) for decl, lines in result]


def script(code: str) -> str:
    """The :script file for a cell."""
    blocks: list[str] = []
    pending: list[str] = []
    for decl, text in chunks(code):
        if decl:
            pending.append(text)
            continue
        if pending:
            blocks.append("\n".join(pending))
            pending = []
        blocks.append(text)
    if pending:
        blocks.append("\n".join(pending))
    return "".join(f":{{\n{b}\n:}}\n" if not b.startswith((":", "import ")) else b + "\n" for b in blocks)


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
        return f":script {self.cell_file(script(code), '.ghci')}"

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
