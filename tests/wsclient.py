"""A small synchronous websocket client for the channels endpoint (tests, benchmarks, scripts).

Needs `websocket-client` (not a runtime dependency of the gateway itself). Speaks both framings,
so the same script can check v1 and legacy JSON.
"""
from __future__ import annotations

import json
import socket
import struct
import time
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from ai.backend.kernel.gateway.wire import V1_SUBPROTOCOL


def _header(msg_type: str, session: str) -> dict:
    return {
        "msg_id": uuid.uuid4().hex, "msg_type": msg_type, "username": "client", "session": session,
        "date": datetime.now(timezone.utc).isoformat(), "version": "5.3",
    }


def encode_client_v1(channel: str, msg: dict) -> bytes:
    parts = [json.dumps(msg[k]).encode() for k in ("header", "parent_header", "metadata", "content")]
    parts += list(msg.get("buffers") or [])
    chan = channel.encode()
    offsets = [8 * (len(parts) + 3)]
    offsets.append(offsets[-1] + len(chan))
    for p in parts:
        offsets.append(offsets[-1] + len(p))
    return struct.pack(f"<{len(offsets) + 1}Q", len(offsets), *offsets) + chan + b"".join(parts)


def decode_server_v1(frame: bytes) -> dict:
    (n,) = struct.unpack_from("<Q", frame)
    offs = struct.unpack_from(f"<{n}Q", frame, 8)
    pieces = [frame[a:b] for a, b in zip(offs, offs[1:])]
    msg = {k: json.loads(p) for k, p in zip(("header", "parent_header", "metadata", "content"), pieces[1:5])}
    msg["channel"] = pieces[0].decode()
    msg["buffers"] = pieces[5:]
    msg["msg_type"] = msg["header"].get("msg_type")
    return msg


def decode_server_legacy(frame: bytes | str) -> dict:
    if isinstance(frame, str):
        msg = json.loads(frame)
        msg["buffers"] = []
        return msg
    (n,) = struct.unpack_from("!I", frame)
    offs = list(struct.unpack_from(f"!{n}I", frame, 4)) + [len(frame)]
    chunks = [frame[a:b] for a, b in zip(offs, offs[1:])]
    msg = json.loads(chunks[0])
    msg["buffers"] = chunks[1:]
    return msg


class ChannelsClient:
    """One websocket to /api/kernels/{id}/channels. `proto` is "v1" or "json"."""

    def __init__(self, base_url: str, kernel_id: str, token: str = "", proto: str = "v1",
                 session_id: str | None = None, timeout: float = 30.0) -> None:
        import websocket  # websocket-client

        self.session_id = session_id or uuid.uuid4().hex
        query = {"session_id": self.session_id}
        if token:
            query["token"] = token
        url = base_url.replace("http", "ws", 1).rstrip("/") + f"/api/kernels/{kernel_id}/channels?" + urlencode(query)
        kwargs: dict[str, Any] = {"timeout": timeout, "sockopt": [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]}
        if proto == "v1":
            kwargs["subprotocols"] = [V1_SUBPROTOCOL]
        self.ws = websocket.create_connection(url, **kwargs)
        self.proto = proto
        self.subprotocol = self.ws.getsubprotocol()
        self.v1 = self.subprotocol == V1_SUBPROTOCOL

    def send(self, channel: str, msg_type: str, content: dict | None = None, buffers: list[bytes] = (),
             metadata: dict | None = None) -> str:
        msg = {"header": _header(msg_type, self.session_id), "parent_header": {}, "metadata": metadata or {},
               "content": content or {}, "buffers": list(buffers)}
        if self.v1:
            self.ws.send_binary(encode_client_v1(channel, msg))
        elif buffers:
            import websocket
            body = dict(msg, channel=channel, buffers=[])
            chunks = [json.dumps(body).encode(), *buffers]
            offs = [4 * (len(chunks) + 1)]
            for c in chunks[:-1]:
                offs.append(offs[-1] + len(c))
            frame = struct.pack(f"!{len(chunks) + 1}I", len(chunks), *offs) + b"".join(chunks)
            self.ws.send(frame, opcode=websocket.ABNF.OPCODE_BINARY)
        else:
            self.ws.send(json.dumps(dict(msg, channel=channel, buffers=[])))
        return msg["header"]["msg_id"]

    def recv(self, timeout: float | None = None) -> dict:
        if timeout is not None:
            self.ws.settimeout(timeout)
        frame = self.ws.recv()
        return decode_server_v1(frame) if self.v1 else decode_server_legacy(frame)

    def wait_reply(self, msg_id: str, timeout: float = 30.0, collect: list | None = None) -> dict:
        """The shell/control/stdin reply to `msg_id`; other messages go to `collect`."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(deadline - time.monotonic(), 0.01))
            if msg["parent_header"].get("msg_id") == msg_id and msg["channel"] != "iopub":
                return msg
            if collect is not None:
                collect.append(msg)

    def request(self, channel: str, msg_type: str, content: dict | None = None, timeout: float = 30.0) -> dict:
        return self.wait_reply(self.send(channel, msg_type, content), timeout)

    def execute(self, code: str, timeout: float = 60.0, **extra: Any) -> tuple[dict, list[dict]]:
        """Run `code`; returns (execute_reply, iopub messages of this request) once idle."""
        msg_id = self.send("shell", "execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": extra.pop("allow_stdin", False), "stop_on_error": True, **extra})
        reply, idle, iopub = None, False, []
        deadline = time.monotonic() + timeout
        while reply is None or not idle:
            msg = self.recv(max(deadline - time.monotonic(), 0.01))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["channel"] == "iopub":
                iopub.append(msg)
                if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                    idle = True
            elif msg["msg_type"] == "execute_reply":
                reply = msg
        return reply, iopub

    def close(self) -> None:
        self.ws.close()


def stdout_of(iopub: list[dict]) -> str:
    return "".join(m["content"]["text"] for m in iopub if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
