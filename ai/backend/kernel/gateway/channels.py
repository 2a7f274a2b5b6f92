"""One websocket session's ZMQ side: shell/control/stdin DEALERs (identity = session_id) and an
iopub SUB, outliving the websocket so output produced while the client is away can be replayed
when the same session_id reconnects.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

import zmq
import zmq.asyncio

from . import zmqutil
from .wire import ClientMessage

log = logging.getLogger(__name__)

CHANNELS = ("iopub", "shell", "control", "stdin")


class Sink(Protocol):
    """Where kernel messages go while a websocket is attached."""

    def deliver(self, channel: str, parts: list[bytes]) -> bool: ...  # False: could not send
    def replaced(self) -> None: ...  # a newer websocket took this session over
    def failed(self, reason: str) -> None: ...  # the session's ZMQ side broke (close with 1011)


class ChannelSession:
    """The kernel end of `/api/kernels/{id}/channels?session_id=S`."""

    def __init__(
        self, ctx: zmq.asyncio.Context, km, kernel_id: str, session_id: str, *,
        buffer_size: int, is_busy=lambda: False,
    ) -> None:
        self.kernel_id = kernel_id
        self.session_id = session_id
        self.session = zmqutil.kernel_session(km)
        self.sink: Sink | None = None  # receives output (attached)
        self.owner: Sink | None = None  # the newest websocket for this session_id
        self._ready_task: asyncio.Task | None = None
        self._attached_once = False
        self._client_spoke = False
        self.buffer: deque[tuple[str, list[bytes]]] = deque(maxlen=max(buffer_size, 1))
        self.dropped = 0
        self.closed = False
        self.broken = ""  # why a pump died; a broken session is closed and never reused
        self._closing: asyncio.Task | None = None
        self._is_busy = is_busy
        self._iopub_seen = asyncio.Event()
        self._nudge_answered = asyncio.Event()
        self._progress = asyncio.Event()
        self._nudges: list[bytes] = []  # msg_ids of our kernel_info nudges (their replies are ours)
        self._expiry: asyncio.TimerHandle | None = None
        ident = session_id.encode()
        self.sockets = {ch: zmqutil.connect(ctx, km, ch, None if ch == "iopub" else ident) for ch in CHANNELS}
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read(ch, sock), name=f"gateway-{ch}-{kernel_id}-{session_id}")
            for ch, sock in self.sockets.items()
        ]

    # -- kernel -> client ----------------------------------------------------------------------

    async def _read(self, channel: str, sock: zmq.asyncio.Socket) -> None:
        """Pump one channel; if it dies, the websocket is told (1011) rather than left mute."""
        try:
            await self._pump(channel, sock)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.closed or (task is not None and task.cancelling()):
                raise
            # not our cancellation: pyzmq cancels a pending receive when its socket goes away
            self.fail(f"the {channel} channel's socket was closed")
        except Exception as exc:  # noqa: BLE001 - any pump failure ends the session, loudly
            if self.closed:
                return  # closing: sockets go away under the pumps
            self.fail(f"the {channel} channel failed: {type(exc).__name__}: {exc}",
                      exc_info=not isinstance(exc, zmq.ZMQError))

    def fail(self, reason: str, exc_info: bool = False) -> None:
        """The session cannot carry messages any more: close its websocket with 1011 and itself."""
        if self.broken or self.closed:
            return
        self.broken = reason
        log.error("gateway session %s:%s broken: %s", self.kernel_id, self.session_id, reason, exc_info=exc_info)
        owner, self.owner, self.sink = self.owner, None, None
        if owner is not None:
            owner.failed(reason)
        self._closing = asyncio.get_running_loop().create_task(self.close())

    async def _pump(self, channel: str, sock: zmq.asyncio.Socket) -> None:
        session = self.session
        while True:
            frames = await sock.recv_multipart()
            parts = zmqutil.split(frames, session)
            if parts is None:
                continue
            if channel == "iopub" and not self._iopub_seen.is_set():
                self._iopub_seen.set()
                self._progress.set()
            if channel == "iopub":
                if b"iopub_welcome" in parts[0]:
                    continue  # answers our own subscription, not the front-end's
                if not self._client_spoke and len(parts[1]) < 8 and parts[1].replace(b" ", b"") == b"{}":
                    continue  # parentless start-up chatter (status starting, debugpy warnings) before any request
            if self._nudges and any(n in parts[1] for n in self._nudges):
                if channel != "iopub":
                    self._nudge_answered.set()
                self._progress.set()
                continue
            if self.sink is None and not self._attached_once:
                continue  # before the first client: kernel start-up chatter, nobody asked for it
            if self.sink is None or not self.sink.deliver(channel, parts):
                if len(self.buffer) == self.buffer.maxlen:
                    self.dropped += 1
                self.buffer.append((channel, parts))

    async def wait_ready(self, timeout: float) -> bool:
        """Let the client talk only once the kernel answers and our iopub subscription is live
        (else early output is lost, and the kernel's start-up chatter would reach the client).

        Nudges with `kernel_info_request` (control always, shell unless the kernel is busy) at a
        50 ms → 1 s back-off instead of a fixed 0.5 s period; a busy kernel that does not answer
        on control only needs iopub to be live.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.05
        while True:
            if self._iopub_seen.is_set() and (self._nudge_answered.is_set() or self._is_busy()):
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("kernel %s did not answer within %.0f s; connecting anyway", self.kernel_id, timeout)
                return False
            channels = ("control",) if self._is_busy() else ("shell", "control")
            for ch in channels:
                msg_id, parts = zmqutil.request_parts("kernel_info_request", session_id=self.session_id)
                self._nudges.append(msg_id.encode())
                await self.sockets[ch].send_multipart(zmqutil.signed(self.session, parts))
            wait_until = loop.time() + min(delay, remaining)
            while not (self._iopub_seen.is_set() and self._nudge_answered.is_set()):
                self._progress.clear()
                try:
                    await asyncio.wait_for(self._progress.wait(), max(wait_until - loop.time(), 0))
                except asyncio.TimeoutError:
                    break
            delay = min(delay * 2, 1.0)

    # -- client -> kernel ----------------------------------------------------------------------

    async def send(self, msg: ClientMessage) -> None:
        self._client_spoke = True
        try:
            await self.sockets[msg.channel].send_multipart(zmqutil.signed(self.session, msg.parts + msg.buffers))
        except zmq.ZMQError as exc:
            self.fail(f"sending on the {msg.channel} channel failed: {exc}")

    # -- attach / detach -----------------------------------------------------------------------

    def claim(self, sink: Sink) -> None:
        """A websocket takes this session over; the previous one (if any) is closed as stale."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        old, self.owner = self.owner, sink
        if old is not None and old is not sink:
            log.info("replacing stale connection %s:%s", self.kernel_id, self.session_id)
            if self.sink is old:
                self.sink = None
            old.replaced()

    async def ready(self, timeout: float) -> None:
        """wait_ready() once per session, however many websockets wait for it."""
        if self._ready_task is None:
            self._ready_task = asyncio.get_running_loop().create_task(self.wait_ready(timeout))
        await asyncio.shield(self._ready_task)

    def attach(self, sink: Sink) -> int:
        """Route output to `sink` (if it still owns the session), replaying what was buffered."""
        if self.broken:
            sink.failed(self.broken)
            return 0
        if self.owner is not sink:
            return 0
        self.sink = sink
        self._attached_once = True
        replayed = 0
        if self.dropped:
            log.warning("%d buffered messages of %s:%s were dropped (buffer full)",
                        self.dropped, self.kernel_id, self.session_id)
            self.dropped = 0
        while self.buffer and self.sink is sink:
            channel, parts = self.buffer.popleft()
            if not sink.deliver(channel, parts):
                self.buffer.appendleft((channel, parts))
                break
            replayed += 1
        if replayed:
            log.info("replayed %d buffered messages to %s:%s", replayed, self.kernel_id, self.session_id)
        return replayed

    def detach(self, sink: Sink, keep_for: float, on_expire) -> None:
        """The websocket went away: buffer output for `keep_for` seconds, then `on_expire(self)`."""
        if self.owner is not sink:
            return  # a newer websocket owns this session
        self.owner = self.sink = None
        log.debug("buffering output for %s:%s", self.kernel_id, self.session_id)
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = asyncio.get_running_loop().call_later(keep_for, on_expire, self)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._expiry is not None:
            self._expiry.cancel()
        if self._ready_task is not None:
            self._ready_task.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sock in self.sockets.values():
            sock.close(linger=0)
        self.buffer.clear()
