"""Jupyter message contents as agent frames: which output a mime bundle becomes, the exit code of
an error, the cursor of a completion request (docs/query-mode.md#output-mapping). Pure functions,
used by the bridge."""
from __future__ import annotations

import base64
import json
from typing import Any

# Rich MIME types in order of preference; text/plain is used only when none of these is present.
MEDIA_PREFERENCE = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/svg+xml",
    "text/html",
    "text/markdown",
    "text/latex",
    "application/json",
)
_BINARY_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif"})


def pick_output(data: dict[str, Any]) -> tuple[str, str] | None:
    """The frame for a Jupyter mime bundle: ("media", json) for rich data, ("stdout", text) for plain.

    A vendor type (`application/x-*`, `application/vnd.*`, but not Jupyter's own widget/front-end
    types) is what the agent's client asked for (the original's drawing, git graph), so it goes
    first, its JSON value kept as is; then audio/video as data URIs; then the generic rich types.
    """
    # the original's media whose data is JSON: a bundle can only carry it as text (nbformat)
    json_text_types = ("application/vnd.sorna.gitgraph",)
    for mime, value in data.items():
        if mime.startswith(("application/x-", "application/vnd.")) and not mime.startswith("application/vnd.jupyter"):
            if mime in json_text_types and isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            if not isinstance(value, (str, int, float, bool, list, dict)) and value is not None:
                value = base64.b64encode(value).decode() if isinstance(value, bytes) else str(value)
            return "media", json.dumps({"type": mime, "data": value})
    for mime, value in data.items():
        if mime.startswith(("audio/", "video/")) and isinstance(value, str):
            uri = value if value.startswith("data:") else f"data:{mime};base64,{''.join(value.split())}"
            return "media", json.dumps({"type": mime, "data": uri})
    for mime in MEDIA_PREFERENCE:
        if mime in data:
            return "media", json.dumps({"type": mime, "data": _media_data(mime, data[mime])})
    if "text/plain" in data:
        return "stdout", _as_text(data["text/plain"])
    for mime, value in data.items():  # an unknown rich type: still deliver it rather than drop it
        return "media", json.dumps({"type": mime, "data": _media_data(mime, value)})
    return None


def _media_data(mime: str, value: Any) -> str:
    if mime in _BINARY_IMAGES:
        b64 = value if isinstance(value, str) else base64.b64encode(value).decode()
        return f"data:{mime};base64,{''.join(b64.split())}"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return json.dumps(value)


def _as_text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def exit_code_of(content: dict[str, Any]) -> int:
    """Exit code for a Jupyter `error`: 1, or the SystemExit value (docs/protocol.md#exit-codes)."""
    if content.get("ename") != "SystemExit":
        return 1
    value = str(content.get("evalue", "")).strip()
    if not value or value == "None":
        return 0
    try:
        return int(value)
    except ValueError:
        return 1


def cursor_from_payload(payload: dict[str, Any]) -> tuple[str, int]:
    """(code, cursor_pos) for `complete_request` from the agent's flattened options.

    The agent sends the text before the cursor as `code` and the text after it as `post`; clients
    that send the whole cell instead give the cursor as `row`/`col` (0-based).
    """
    code = str(payload.get("code") or "")
    post = payload.get("post")
    if isinstance(post, str) and post:
        return code + post, len(code)
    row, col = payload.get("row"), payload.get("col")
    if isinstance(row, int) and isinstance(col, int) and "\n" in code:
        lines = code.split("\n")
        row = max(0, min(row, len(lines) - 1))
        col = max(0, min(col, len(lines[row])))
        return code, sum(len(line) + 1 for line in lines[:row]) + col
    return code, len(code)
