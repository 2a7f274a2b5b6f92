"""The channels websocket: /api/kernels/{id}/channels?session_id=S.

Speaks `v1.kernel.websocket.jupyter.org` when the client offers it, legacy JSON otherwise. Sets
TCP_NODELAY (without it each round trip waits ~40 ms for Nagle + delayed ACK). Messages the
gateway cannot forward are answered with an error reply on the same channel (or shell) instead
of being dropped silently; the connection stays open.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import zmq
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from .. import zmqutil
from ..channels import ChannelSession
from ..wire import (
    CLIENT_CHANNELS, V1_SUBPROTOCOL, FrameError, decode_legacy, decode_v1, encode_legacy, encode_v1, reply_type,
)
from .base import GatewayMixin

log = logging.getLogger(__name__)


class ChannelsHandler(GatewayMixin, WebSocketHandler):
    cs: ChannelSession | None = None
    kernel_id = ""
    v1 = False

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return V1_SUBPROTOCOL if V1_SUBPROTOCOL in subprotocols else None

    def check_origin(self, origin: str) -> bool:
        return True  # decided in prepare() with the gateway's own rules (JSON 403 there)

    def prepare(self) -> None:
        self.check_access()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else ""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"reason": self._reason, "message": message}))

    async def get(self, kernel_id: str, *args: Any, **kwargs: Any) -> None:
        self.gateway.kernel_manager(kernel_id)  # 404 before the upgrade
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            raise web.HTTPError(400, "this endpoint is a websocket: send `Upgrade: websocket`")
        await super().get(kernel_id, *args, **kwargs)

    async def open(self, kernel_id: str, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)
        state = self.gateway
        self.kernel_id = kernel_id
        self.v1 = self.selected_subprotocol == V1_SUBPROTOCOL
        session_id = self.get_argument("session_id", "") or uuid.uuid4().hex
        try:
            cs, _ = state.channel_session(kernel_id, session_id)
        except web.HTTPError:
            self.close(4004, f"kernel {kernel_id} does not exist")
            return
        state.websockets.setdefault(kernel_id, set()).add(self)
        self.activity = state.watch(kernel_id)
        self.activity.touch()
        self.cs = cs
        cs.claim(self)
        try:
            await cs.ready(state.config.kernel_info_timeout)
        except asyncio.CancelledError:
            if not cs.closed:
                raise
            return
        except zmq.ZMQError as exc:  # the nudges could not be sent: the session is unusable
            cs.fail(f"the kernel's channels failed while connecting: {exc}")
            return
        if self.cs is not cs or self.ws_connection is None or self.ws_connection.is_closing():
            return  # replaced or closed while waiting
        cs.attach(self)
        log.debug("websocket open %s:%s (%s)", kernel_id, session_id, "v1" if self.v1 else "json")

    async def on_message(self, message: str | bytes) -> None:
        cs = self.cs
        if cs is None:
            return
        try:
            if self.v1:
                if isinstance(message, str):
                    raise FrameError("text frame on the v1 subprotocol (messages must be binary)")
                msg = decode_v1(message)
            else:
                msg = decode_legacy(message)
        except FrameError as exc:
            self._refuse(str(exc), exc.header, message)
            return
        self.activity.touch()
        await cs.send(msg)

    def _refuse(self, reason: str, header: dict | None, raw: str | bytes) -> None:
        """An error reply the client can match to its request (parent = its header, if any)."""
        log.warning("refusing websocket message on %s: %s", self.kernel_id, reason)
        channel = "shell"
        if not self.v1 and isinstance(raw, str):
            try:
                named = json.loads(raw).get("channel")
                channel = named if named in CLIENT_CHANNELS else "shell"
            except (ValueError, AttributeError):  # not JSON / not an object: the reply goes on shell
                pass
        msg_type = reply_type(header.get("msg_type", "")) if header else "gateway_error"
        _, parts = zmqutil.request_parts(
            msg_type, {"status": "error", "ename": "GatewayError", "evalue": reason, "traceback": []},
        )
        parts[1] = json.dumps(header or {}).encode()
        self.deliver(channel, parts)

    # -- Sink --------------------------------------------------------------------------------

    def deliver(self, channel: str, parts: list[bytes]) -> bool:
        conn = self.ws_connection
        if conn is None or conn.is_closing():
            return False
        if self.v1:
            frame, binary = encode_v1(channel, parts), True
        else:
            try:
                header = json.loads(parts[0])
            except ValueError:  # split() checked the HMAC: a kernel's own bad header, sent as {}
                log.warning("kernel %s sent a header that is not JSON", self.kernel_id)
                header = {}
            frame, binary = encode_legacy(channel, header, parts)
        try:
            self.write_message(frame, binary=binary)
        except WebSocketClosedError:
            return False
        return True

    def replaced(self) -> None:
        self.cs = None
        self.close(1000, "replaced by a newer connection with the same session_id")

    def failed(self, reason: str) -> None:
        """1011 (internal error) with the reason, so the front-end reconnects instead of waiting."""
        self.cs = None
        self.close(1011, reason.encode()[:120].decode("utf-8", "ignore"))

    def kernel_gone(self, reason: str = "kernel shut down") -> None:
        self.cs = None
        self.close(1000, reason)

    def on_close(self) -> None:
        state = self.gateway
        handlers = state.websockets.get(self.kernel_id)
        if handlers is not None:
            handlers.discard(self)
        cs, self.cs = self.cs, None
        if cs is not None and not state.closed:
            cs.detach(self, state.config.replay_buffer_timeout, state.expire)
