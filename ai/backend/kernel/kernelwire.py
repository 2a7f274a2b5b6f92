"""Kernel messages as the bridge reads them off the wire: large parts left in ZeroMQ's buffers,
then verified and decoded by jupyter_client's `Session` (docs/performance.md#query-path)."""
from __future__ import annotations

from typing import Any

import zmq
from jupyter_client.session import Session

ZERO_COPY_MIN = 64 << 10  # iopub parts from this size on stay in ZeroMQ's buffer (not copied on receipt)


def uncopied(frames: list[zmq.Frame]) -> list[bytes | memoryview]:
    """A message received without copying: its large parts (a piece of output) as views of ZeroMQ's
    own buffers, the small ones as bytes (docs/performance.md#query-path)."""
    return [frame.buffer if len(frame) >= ZERO_COPY_MIN else frame.bytes for frame in frames]


def deserialize(session: Session, raw: list[Any]) -> dict[str, Any]:
    """`Session.deserialize` (signature, replay check, decode) of a message whose large parts may be
    memoryviews. The one thing a view cannot do is the fallback decode of content that is not
    UTF-8 (`json_unpacker` wants bytes): that message is decoded again from bytes, once its
    signature has been taken out of the replay history the first attempt put it in."""
    _, parts = session.feed_identities(raw)
    replayed = bool(parts) and parts[0] in session.digest_history
    try:
        return session.deserialize(parts)
    except Exception:
        if replayed or not any(isinstance(part, memoryview) for part in parts):
            raise
    session.digest_history.discard(parts[0])
    return session.deserialize([bytes(part) for part in parts])
