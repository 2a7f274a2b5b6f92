"""The original's drawing payload: the command list, msgpack-encoded, then base64 (ASCII).

Why our own msgpack writer: the payload must be produced in any interpreter the user runs
(an image's Python may lack the msgpack package). It writes exactly what
`msgpack.packb(obj, use_bin_type=True)` writes for the types commands use; tuples become arrays,
so a decoder reads lists back.
"""
from __future__ import annotations

import base64
import struct
from typing import Any


def encode_commands(commands: list[Any]) -> str:
    """base64(msgpack(commands)), the `application/x-sorna-drawing` data."""
    out = bytearray()
    _pack(commands, out)
    return base64.b64encode(bytes(out)).decode("ascii")


def _pack(obj: Any, out: bytearray) -> None:
    if obj is None:
        out += b"\xc0"
    elif obj is True or obj is False:
        out += b"\xc3" if obj else b"\xc2"
    elif isinstance(obj, int):
        _pack_int(obj, out)
    elif isinstance(obj, float):
        out += b"\xcb" + struct.pack(">d", obj)
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
        _header(len(data), out, fix=(0xA0, 31), sized=(0xD9, 0xDA, 0xDB))
        out += data
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
        _header(len(data), out, fix=None, sized=(0xC4, 0xC5, 0xC6))
        out += data
    elif isinstance(obj, (list, tuple)):
        _header(len(obj), out, fix=(0x90, 15), sized=(None, 0xDC, 0xDD))
        for item in obj:
            _pack(item, out)
    elif isinstance(obj, dict):
        _header(len(obj), out, fix=(0x80, 15), sized=(None, 0xDE, 0xDF))
        for key, value in obj.items():
            _pack(key, out)
            _pack(value, out)
    else:
        raise TypeError(f"cannot encode {type(obj).__name__} in a drawing command")


def _header(n: int, out: bytearray, *, fix: tuple[int, int] | None,
            sized: tuple[int | None, int, int]) -> None:
    """Length prefix: fix form when it fits, else the 8/16/32-bit form (None: no 8-bit form)."""
    if fix is not None and n <= fix[1]:
        out.append(fix[0] | n)
    elif sized[0] is not None and n < 0x100:
        out += bytes((sized[0], n))
    elif n < 0x10000:
        out += bytes((sized[1],)) + struct.pack(">H", n)
    else:
        out += bytes((sized[2],)) + struct.pack(">I", n)


def _pack_int(n: int, out: bytearray) -> None:
    if 0 <= n < 0x80:
        out.append(n)
    elif -32 <= n < 0:
        out += struct.pack(">b", n)
    elif n >= 0:
        for code, fmt, limit in ((0xCC, ">B", 1 << 8), (0xCD, ">H", 1 << 16),
                                 (0xCE, ">I", 1 << 32), (0xCF, ">Q", 1 << 64)):
            if n < limit:
                out += bytes((code,)) + struct.pack(fmt, n)
                return
        raise OverflowError("integer too large for a drawing command")
    else:
        for code, fmt, limit in ((0xD0, ">b", 1 << 7), (0xD1, ">h", 1 << 15),
                                 (0xD2, ">i", 1 << 31), (0xD3, ">q", 1 << 63)):
            if n >= -limit:
                out += bytes((code,)) + struct.pack(fmt, n)
                return
        raise OverflowError("integer too large for a drawing command")
