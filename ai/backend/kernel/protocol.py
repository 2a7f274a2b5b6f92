"""The agent wire vocabulary: message framing, payload codecs and validation (docs/protocol.md,
"Messages"). Which ops exist and how each is served is the table in `ops.py`.

Every message is exactly two ZeroMQ frames: an ASCII op/type name and a payload. Inbound payloads
are strict UTF-8; outbound JSON uses Python's default `json.dumps` so the bytes match the original.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import msgpack

from .ops import ANSWERED_OPS, KNOWN_OPS

log = logging.getLogger(__name__)

Payload = bytes | bytearray | str | dict | list

# Output frames larger than this are split (the agent truncates frames above 10 MiB).
MAX_OUTPUT_FRAME = 1 << 20
SPLITTABLE_FRAMES = frozenset({"stdout", "stderr"})


class ProtocolError(ValueError):
    """A message the runner cannot accept; the receive loop logs it and keeps serving."""


@dataclass(frozen=True, slots=True)
class Request:
    op: str
    text: str
    error: str = ""  # set when the payload could not be decoded; the op is answered with it


def decode_request(frames: list[bytes]) -> Request:
    """Validate one inbound multipart message (two frames, ASCII op, strict UTF-8 payload)."""
    if len(frames) != 2:
        raise ProtocolError(f"expected 2 frames, got {len(frames)}")
    raw_op, raw_payload = frames
    try:
        op = raw_op.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(f"op name is not ASCII: {raw_op[:40]!r}") from None
    if op not in KNOWN_OPS:
        raise ProtocolError(f"unknown op {op[:40]!r}")
    try:
        text = raw_payload.decode("utf-8")
    except UnicodeDecodeError as e:
        reason = f"{op}: payload is not valid UTF-8 ({e.reason} at byte {e.start})"
        if op in ANSWERED_OPS:  # the agent waits for an answer: give it one rather than hang it
            return Request(op, "", error=reason)
        raise ProtocolError(reason) from None
    return Request(op, text)


def encode_payload(payload: Payload) -> bytes:
    """Outbound payload bytes: raw bytes as is, text as UTF-8, objects as default-style JSON."""
    if isinstance(payload, (bytes, bytearray)):
        return payload  # type: ignore[return-value]
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload).encode("ascii")


def encode_status(started_at: float) -> bytes:
    return msgpack.packb({"started_at": started_at}, use_bin_type=True)


def parse_json_object(text: str, op: str) -> dict[str, Any]:
    """Decode a JSON object payload (`complete`, `event`, ...) or raise ProtocolError."""
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ProtocolError(f"{op}: invalid JSON ({e})") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{op}: expected a JSON object, got {type(value).__name__}")
    return value


def log_agent_event(text: str) -> None:
    """The `event` op: the agent tells something (an OOM kill, ...) worth a line in the log."""
    try:
        event = parse_json_object(text, "event")
        log.warning("Agent-notified event: %s %r", event.get("type"), event.get("data"))
    except ProtocolError as e:
        log.warning("%s", e)
