"""Small helpers for talking to a kernel's ZMQ sockets with raw, signed message parts."""
from __future__ import annotations

import hmac
import json
import logging
import uuid
from datetime import datetime, timezone

import zmq
import zmq.asyncio
from jupyter_client.session import Session

log = logging.getLogger(__name__)

DELIM = b"<IDS|MSG>"
SOCKET_TYPES = {"shell": zmq.DEALER, "control": zmq.DEALER, "stdin": zmq.DEALER, "iopub": zmq.SUB}


def channel_url(km, channel: str) -> str:
    """The URL of one of a kernel manager's channels (tcp or ipc)."""
    port = getattr(km, f"{channel}_port")
    if km.transport == "tcp":
        return f"tcp://{km.ip}:{port}"
    return f"{km.transport}://{km.ip}-{port}"


def connect(ctx: zmq.asyncio.Context, km, channel: str, identity: bytes | None = None) -> zmq.asyncio.Socket:
    """A socket connected to `channel` of the kernel (SUB sockets subscribe to everything)."""
    sock = ctx.socket(SOCKET_TYPES[channel])
    sock.linger = 0
    if identity:
        sock.setsockopt(zmq.IDENTITY, identity)
    if channel == "iopub":
        sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(channel_url(km, channel))
    return sock


def kernel_session(km) -> Session:
    """A Session that signs with the kernel's key (clients never see it)."""
    return Session(key=km.session.key, signature_scheme=km.session.signature_scheme, username="krunner-gateway")


def split(frames: list[bytes], session: Session) -> list[bytes] | None:
    """header, parent, metadata, content, buffers... of a received multipart; None if invalid."""
    try:
        idx = frames.index(DELIM)
    except ValueError:
        log.warning("dropping a kernel message without delimiter")
        return None
    parts = frames[idx + 2:]
    if len(parts) < 4:
        log.warning("dropping a truncated kernel message")
        return None
    if session.auth is not None and not hmac.compare_digest(frames[idx + 1], session.sign(parts[:4])):
        log.warning("dropping a kernel message with a bad signature")
        return None
    return parts


def signed(session: Session, parts: list[bytes]) -> list[bytes]:
    """Frames for a DEALER: delimiter, HMAC of the four JSON parts, the parts, the buffers."""
    return [DELIM, session.sign(parts[:4]), *parts]


def request_parts(msg_type: str, content: dict | None = None, session_id: str = "") -> tuple[str, list[bytes]]:
    """(msg_id, parts) of a fresh request made by the gateway itself."""
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id, "msg_type": msg_type, "username": "krunner-gateway", "session": session_id,
        "date": datetime.now(timezone.utc).isoformat(), "version": "5.3",
    }
    return msg_id, [json.dumps(header).encode(), b"{}", b"{}", json.dumps(content or {}).encode()]
