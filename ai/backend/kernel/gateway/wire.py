"""Websocket framings of Jupyter messages: legacy JSON (+ its binary variant) and the
`v1.kernel.websocket.jupyter.org` subprotocol.

Kernel → client messages arrive as raw ZMQ parts (header, parent_header, metadata, content bytes,
buffers); both encoders splice those bytes instead of re-serialising, so large outputs cost one copy.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

V1_SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"
CLIENT_CHANNELS = ("shell", "control", "stdin")


class FrameError(ValueError):
    """A websocket message that is not a well-formed Jupyter message (header kept when it parsed)."""

    def __init__(self, message: str, header: dict | None = None) -> None:
        super().__init__(message)
        self.header = header


@dataclass
class ClientMessage:
    """A message from the websocket client, ready to be signed and sent to the kernel."""

    channel: str
    parts: list[bytes]  # header, parent_header, metadata, content (JSON bytes)
    buffers: list[bytes] = field(default_factory=list)
    header: dict = field(default_factory=dict)


# -- kernel -> client -------------------------------------------------------------------------

def encode_v1(channel: str, parts: list[bytes]) -> bytes:
    """One v1 binary frame: u64le count, u64le offsets, channel, then the parts unchanged."""
    chan = channel.encode()
    count = len(parts) + 2
    offsets = [8 * (1 + count)]
    offsets.append(offsets[-1] + len(chan))
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    head = struct.pack(f"<{count + 1}Q", count, *offsets)
    return b"".join([head, chan, *parts])


def encode_legacy(channel: str, header: dict, parts: list[bytes]) -> tuple[bytes, bool]:
    """Legacy JSON framing; returns (frame, is_binary). Buffers force the binary variant."""
    body = b"".join([
        b'{"header":', parts[0],
        b',"msg_id":', json.dumps(header.get("msg_id", "")).encode(),
        b',"msg_type":', json.dumps(header.get("msg_type", "")).encode(),
        b',"parent_header":', parts[1],
        b',"metadata":', parts[2],
        b',"content":', parts[3],
        b',"buffers":[],"channel":"', channel.encode(), b'"}',
    ])
    buffers = parts[4:]
    if not buffers:
        return body, False
    chunks = [body, *buffers]
    nbufs = len(chunks)
    offsets = [4 * (nbufs + 1)]
    for chunk in chunks[:-1]:
        offsets.append(offsets[-1] + len(chunk))
    return struct.pack(f"!{nbufs + 1}I", nbufs, *offsets) + b"".join(chunks), True


# -- client -> kernel -------------------------------------------------------------------------

def _load(data: bytes | str, what: str) -> object:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FrameError(f"{what} is not valid JSON: {exc}") from None


def _check_header(header: object) -> dict:
    if not isinstance(header, dict) or not isinstance(header.get("msg_type"), str) or not header.get("msg_type"):
        raise FrameError("message header must be an object with a msg_type")
    if not isinstance(header.get("msg_id", ""), str):
        raise FrameError("header.msg_id must be a string")
    return header


def _check_channel(channel: object, header: dict) -> str:
    if channel not in CLIENT_CHANNELS:
        raise FrameError(f"unknown channel {channel!r}: expected one of {', '.join(CLIENT_CHANNELS)}", header)
    return channel  # type: ignore[return-value]


def decode_v1(frame: bytes) -> ClientMessage:
    """Parse a v1 binary frame; header/parent/metadata/content are kept as raw bytes."""
    if len(frame) < 8:
        raise FrameError("v1 frame shorter than its offset count")
    (count,) = struct.unpack_from("<Q", frame)
    if count < 6 or 8 * (1 + count) > len(frame):
        raise FrameError(f"v1 frame has a bad offset count ({count})")
    offsets = struct.unpack_from(f"<{count}Q", frame, 8)
    if offsets[0] != 8 * (1 + count) or offsets[-1] != len(frame) or any(
        a > b for a, b in zip(offsets, offsets[1:])
    ):
        raise FrameError("v1 frame offsets are inconsistent with its length")
    try:
        channel = frame[offsets[0]:offsets[1]].decode()
    except UnicodeDecodeError:
        raise FrameError("v1 channel name is not UTF-8") from None
    pieces = [frame[a:b] for a, b in zip(offsets[1:], offsets[2:])]
    header = _check_header(_load(pieces[0], "header"))
    channel = _check_channel(channel, header)
    for what, raw in zip(("parent_header", "metadata", "content"), pieces[1:4]):
        if not raw.lstrip().startswith(b"{"):
            raise FrameError(f"{what} must be a JSON object", header)
    return ClientMessage(channel, pieces[:4], pieces[4:], header)


def decode_legacy(frame: bytes | str) -> ClientMessage:
    """Parse a legacy text frame (JSON) or legacy binary frame (u32be offsets + JSON + buffers)."""
    buffers: list[bytes] = []
    if isinstance(frame, bytes):
        if len(frame) < 8:
            raise FrameError("binary frame too short")
        (nbufs,) = struct.unpack_from("!I", frame)
        if nbufs < 1 or 4 * (nbufs + 1) > len(frame):
            raise FrameError(f"binary frame has a bad buffer count ({nbufs})")
        offsets = list(struct.unpack_from(f"!{nbufs}I", frame, 4)) + [len(frame)]
        if any(a > b for a, b in zip(offsets, offsets[1:])) or offsets[0] < 4 * (nbufs + 1):
            raise FrameError("binary frame offsets are inconsistent with its length")
        chunks = [frame[a:b] for a, b in zip(offsets, offsets[1:])]
        msg, buffers = _load(chunks[0], "message"), chunks[1:]
    else:
        msg = _load(frame, "message")
    if not isinstance(msg, dict):
        raise FrameError("message must be a JSON object")
    header = _check_header(msg.get("header"))
    channel = _check_channel(msg.get("channel") or "shell", header)
    parts = [json.dumps(header).encode()]
    for key in ("parent_header", "metadata", "content"):
        value = msg.get(key) or {}
        if not isinstance(value, dict):
            raise FrameError(f"{key} must be a JSON object", header)
        parts.append(json.dumps(value).encode())
    return ClientMessage(channel, parts, buffers, header)


def reply_type(msg_type: str) -> str:
    """The reply name for an error answer to a request we refused."""
    return msg_type[: -len("_request")] + "_reply" if msg_type.endswith("_request") else "gateway_error"
