"""Split a C-like cell into top-level units so statements can be wrapped into an entry point.

Why: users write `printf("hi");` in a cell; the compiled kernels put such statements into
`main` while keeping includes/imports, type and function definitions at file level.
"""
from __future__ import annotations

import re
from collections.abc import Callable

CONTROL_WORDS = {"if", "else", "while", "for", "switch", "do", "return", "case", "catch", "try",
                 "synchronized", "loop", "match", "defer", "go", "select", "new", "delete", "throw"}


def split_units(code: str, *, newline_terminates: bool = False,
                attribute_prefix: str | None = None) -> list[str]:
    """Cut `code` into depth-0 units, keeping every character (comments, blank lines) in order.

    A unit ends at a `;` or a closing `}` at depth 0 (a `;` right after that `}` joins it), at a
    newline at depth 0 when `newline_terminates` (Go), and preprocessor lines (`#...`) are units of
    their own. Leading comments and attribute lines (Rust `#[...]`) stay with the next unit.
    """
    units: list[str] = []
    i, n, depth, start = 0, len(code), 0, 0
    at_line_start = True

    def cut(end: int) -> None:
        nonlocal start
        if code[start:end].strip():
            units.append(code[start:end])
            start = end

    while i < n:
        c = code[i]
        if at_line_start and depth == 0 and c == "#" and not (
                attribute_prefix and code.startswith(attribute_prefix, i)):
            # preprocessor line (with backslash continuations)
            if code[start:i].strip():
                cut(i)
            j = i
            while True:
                nl = code.find("\n", j)
                if nl < 0:
                    j = n
                    break
                if code[nl - 1] == "\\":
                    j = nl + 1
                    continue
                j = nl + 1
                break
            units.append(code[start:j]) if code[start:j].strip() else None
            start = i = j
            continue
        if c == "\n":
            at_line_start = True
            if newline_terminates and depth == 0 and code[start:i].strip():
                stripped = code[start:i].strip()
                if not stripped.startswith(("//", "/*")) and not stripped.endswith(("(", ",", "{")):
                    cut(i + 1)
            i += 1
            continue
        if c in " \t\r":
            i += 1
            continue
        at_line_start = False
        if code.startswith("//", i):
            nl = code.find("\n", i)
            i = n if nl < 0 else nl
            continue
        if code.startswith("/*", i):
            end = code.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if c in "\"'`":
            if c == "'" and re.match(r"'[A-Za-z_]\w*[^'\w]", code[i:i + 64] + " ") and "'" not in code[i + 1:i + 3]:
                i += 1  # a Rust lifetime, not a char literal
                continue
            j = i + 1
            while j < n and code[j] != c:
                j += 2 if code[j] == "\\" and c != "`" else 1
            i = j + 1
            continue
        if c in "({[":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
            if c == "}" and depth == 0:
                m = re.compile(r"[ \t]*;").match(code, i + 1)
                cut(m.end() if m else i + 1)
                i = m.end() if m else i + 1
                continue
        elif c == ";" and depth == 0:
            cut(i + 1)
        i += 1
    if code[start:].strip():
        units.append(code[start:])
    return units


def _strip_comments(unit: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", unit, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return text.strip()


class Unit(str):
    """A unit's text that also knows the cell line it starts on (`line`, 1-based)."""

    line: int

    def __new__(cls, text: str, line: int) -> "Unit":
        unit = super().__new__(cls, text)
        unit.line = line
        return unit


def partition(code: str, is_declaration: Callable[[str], bool], **kwargs: bool | str | None
              ) -> tuple[list[Unit], list[Unit]]:
    """(file-level units, statement units) of a cell, each in source order."""
    top: list[Unit] = []
    body: list[Unit] = []
    pos = 0
    for text in split_units(code, **kwargs):  # type: ignore[arg-type]
        start = code.index(text, pos)
        pos = start + len(text)
        unit = Unit(text, code.count("\n", 0, start) + 1)
        (top if is_declaration(_strip_comments(text)) else body).append(unit)
    return top, body


class Program:
    """A generated source file that remembers which cell line each of its lines came from."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.origin: list[int | None] = [None]  # index = program line (1-based)

    def add(self, text: str, line: int | None = None, prefix: str = "") -> "Program":
        """Append `text` (newline-terminated); `line`: the cell line of its first line."""
        if not text.endswith("\n"):
            text += "\n"
        if prefix:
            text = "".join(prefix + ln if ln.strip() else ln for ln in text.splitlines(keepends=True))
        count = text.count("\n")
        self.parts.append(text)
        self.origin.extend(range(line, line + count) if line is not None else [None] * count)
        return self

    def units(self, units: list[Unit], prefix: str = "") -> "Program":
        for unit in units:
            self.add(unit, unit.line, prefix)
        return self

    @property
    def text(self) -> str:
        return "".join(self.parts)


def map_lines(diagnostics: str, filename: str, origin: list[int | None] | None) -> str:
    """Diagnostics about the generated `filename` rewritten to point at the cell ("cell:L:")."""
    if origin is None:
        return diagnostics

    def cell_line(number: str) -> str:
        i = int(number)
        return str(origin[i]) if i < len(origin) and origin[i] is not None else number

    name = re.escape(filename)
    text = re.sub(rf"(?:\./)?\b{name}:(\d+)", lambda m: f"cell:{cell_line(m.group(1))}", diagnostics)
    # the source excerpts of gcc/rustc ("  12 | code"), only inside diagnostics
    return re.sub(r"(?m)^(\s*)(\d+)( \|)", lambda m: m.group(1) + cell_line(m.group(2)) + m.group(3), text)


FUNCTION_DEF = re.compile(r"^(?:[\w:<>,\*&\[\]]+\s+|[\w:<>,\*&\[\]]+(?=[\*&]))+\**&?\s*([A-Za-z_][\w:]*)\s*\([^;{]*\)\s*(?:const\s*)?(?:noexcept\s*)?(?:throws\s+[\w.,\s]+)?\{", re.S)


def looks_like_function(text: str) -> bool:
    """`type name(args) {` where the first word is not a statement keyword (`else if (x) {`)."""
    m = FUNCTION_DEF.match(text)
    if not m:
        return False
    first = re.match(r"\w+", text)
    return not (first and first.group(0) in CONTROL_WORDS) and m.group(1) not in CONTROL_WORDS


def indent(lines: list[str], prefix: str = "    ") -> str:  # kept for callers without line maps
    text = "".join(u if u.endswith("\n") else u + "\n" for u in lines)
    return "".join(prefix + ln if ln.strip() else ln for ln in text.splitlines(keepends=True))
