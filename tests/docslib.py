"""Code examples taken from docs/*.md, so tests run exactly what users copy."""
from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def example(page: str, name: str) -> str:
    """The fenced code block right after `<!-- example: NAME -->` in docs/PAGE."""
    text = (DOCS / page).read_text(encoding="utf-8")
    m = re.search(r"<!-- example: " + re.escape(name) + r" -->\s*```[^\n]*\n(.*?)\n```", text, re.S)
    if not m:
        raise LookupError(f"no example {name!r} in docs/{page}")
    return m.group(1) + "\n"
