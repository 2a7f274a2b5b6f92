"""Stand-in for ai.backend.common.json.load_json (the original uses orjson.loads; the stdlib
parser accepts the same documents for our purposes and raises on the same malformed ones)."""

import json
from typing import Any


def load_json(s: bytes | bytearray | memoryview | str) -> Any:
    if isinstance(s, memoryview):
        s = bytes(s)
    return json.loads(s)
