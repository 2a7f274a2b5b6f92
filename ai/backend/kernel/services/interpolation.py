"""Variable interpolation in service definitions (docs/services.md#interpolation).

`${{ expr }}` or `{expr}` is replaced by `str.format_map` over the start's variables (`ports`,
`runtime_path`, the `ref` results of prestart actions). Text that a shell will parse gets each
value shell-quoted (`quote=shlex.quote`), so a value is always one word and never shell syntax.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import InvalidServiceDefinition

# `${{ expr }}` (GitHub style) or `{expr}` whose `{` is not preceded by `$` or `{` (Python style).
_PATTERN = re.compile(r"\$\{\{\s*(?P<e1>.*?)\s*\}\}|(?<![${])\{\s*(?P<e2>.*?)\s*\}")


def _expand(text: str, variables: Mapping[str, Any], quote: Callable[[str], str] | None) -> str:
    out = []
    last = 0
    for m in _PATTERN.finditer(text):
        out.append(text[last:m.start()])
        expr = m.group("e1") if m.group("e1") is not None else m.group("e2")
        try:
            value = ("{" + expr + "}").format_map(variables)
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as e:
            raise InvalidServiceDefinition(f"cannot interpolate {m.group(0)!r} in {text!r}: {e!r}") from e
        out.append(quote(value) if quote is not None else value)
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def interpolate(
    parts: Iterable[str], variables: Mapping[str, Any], *, quote: Callable[[str], str] | None = None,
) -> list[str]:
    """Replace `${{ expr }}`/`{expr}` in each string by `str.format_map` over `variables`, each
    value passed through `quote` when one is given."""
    return [_expand(p, variables, quote) for p in parts]


class _Anything(dict[str, Any]):
    """Variables stand-in for syntax checks: every name exists and supports indexing."""

    class _Value(str):
        def __getitem__(self, key: Any) -> str:  # type: ignore[override]
            return ""

        def __getattr__(self, name: str) -> str:
            return ""

    def __missing__(self, key: str) -> Any:
        return self._Value("")


def check_template_syntax(parts: Iterable[str]) -> None:
    """Raise for brace expressions `format_map` can never accept (e.g. literal JSON braces)."""
    interpolate(parts, _Anything())
