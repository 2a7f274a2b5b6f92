"""Query output on its way to the agent: in order, never lost, in bounded memory.

A kernel publishes its output on a PUB socket, which drops messages for a subscriber that falls
behind: the runner must read iopub as fast as the kernel writes, whatever the agent's pace. So the
bridge never waits for the agent; it puts each frame here. Up to `memory_limit` bytes wait in
memory; beyond that, frames go to a spool file (and every later frame too, so the order holds)
until the agent has caught up. One drain task hands the frames to the agent link in order.
See docs/query-mode.md#slow-agents.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import struct
import tempfile
from typing import IO

from . import protocol
from .agentlink import AgentLink

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!HQ")  # frame-name length, payload length


class Outbox:
    """Frames for the agent that never block their producer (the bridge's iopub reader)."""

    def __init__(self, link: AgentLink, *, memory_limit: int = 32 << 20, spool_limit: int = 2 << 30,
                 spool_dir: str | None = None) -> None:
        self.link = link
        self.memory_limit, self.spool_limit = memory_limit, spool_limit
        self.dropped_bytes = 0  # output beyond spool_limit, reported on stderr when the query ends
        self.spool_dir = spool_dir
        self._memory: collections.deque[tuple[str, bytes]] = collections.deque()
        self._memory_bytes = 0
        self._spool: IO[bytes] | None = None
        self._spool_read = 0  # offset of the next unsent frame in the spool file
        self._spool_end = 0
        self._put = 0  # frames accepted so far
        self._sent = 0  # frames handed to the link so far
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None
        self.peak_memory_bytes = 0

    def put(self, msg_type: str, payload: protocol.Payload = b"") -> None:
        """Queue one frame (returns at once; the drain task sends it after every earlier one)."""
        data = protocol.encode_payload(payload)
        if self._spool is None and self._memory_bytes + len(data) <= self.memory_limit:
            self._memory.append((msg_type, data))
            self._memory_bytes += len(data)
            self.peak_memory_bytes = max(self.peak_memory_bytes, self._memory_bytes)
        elif self._spool_end - self._spool_read + len(data) > self.spool_limit:
            if not self.dropped_bytes:
                log.error("the agent has not read %d MiB of output; dropping more until it catches up",
                          self.spool_limit >> 20)
            self.dropped_bytes += len(data)
            return
        else:
            self._write_spool(msg_type, data)
        self._put += 1
        self._wake.set()
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="outbox-drain")

    async def flush(self) -> None:
        """Wait until every frame put so far has been handed to the agent link (after a note on
        stderr if output had to be dropped)."""
        if self.dropped_bytes:
            dropped, self.dropped_bytes = self.dropped_bytes, 0
            self.put("stderr", f"\nkrunner: {dropped} bytes of output were dropped: the agent did not read "
                               f"{self.spool_limit >> 20} MiB of earlier output\n")
        target = self._put
        while self._sent < target:
            if self._drainer is None or self._drainer.done():
                raise RuntimeError("the outbox's drain task ended with frames still queued")
            self._progress.clear()
            await self._progress.wait()

    async def close(self) -> None:
        """Stop sending (shutdown); frames not sent yet are dropped with a log line."""
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
        if self._put > self._sent:
            log.warning("shutdown: %d output frames were never read by the agent", self._put - self._sent)
        self._close_spool()

    # ---- the spool file --------------------------------------------------------------------
    def _write_spool(self, msg_type: str, data: bytes) -> None:
        if self._spool is None:
            self._spool = tempfile.TemporaryFile(prefix="krunner-outbox-", dir=self.spool_dir)
            self._spool_read = self._spool_end = 0
            log.info("the agent reads slower than the kernel writes: output beyond %d MiB waits in %s",
                     self.memory_limit >> 20, self.spool_dir or tempfile.gettempdir())
        name = msg_type.encode("ascii")
        self._spool.seek(self._spool_end)
        self._spool.write(_HEADER.pack(len(name), len(data)) + name)
        self._spool.write(data)
        self._spool_end = self._spool.tell()

    def _read_spool(self) -> tuple[str, bytes]:
        assert self._spool is not None
        self._spool.seek(self._spool_read)
        name_len, data_len = _HEADER.unpack(self._spool.read(_HEADER.size))
        name = self._spool.read(name_len).decode("ascii")
        data = self._spool.read(data_len)
        self._spool_read = self._spool.tell()
        if self._spool_read == self._spool_end:  # caught up: back to memory only
            self._close_spool()
        return name, data

    def _close_spool(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    # ---- sending ---------------------------------------------------------------------------
    def _next(self) -> tuple[str, bytes] | None:
        if self._memory:
            msg_type, data = self._memory.popleft()
            self._memory_bytes -= len(data)
            return msg_type, data
        if self._spool is not None and self._spool_read < self._spool_end:
            return self._read_spool()
        return None

    async def _drain(self) -> None:
        while True:
            frame = self._next()
            if frame is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self.link.send(*frame)
            except asyncio.CancelledError:
                raise
            except Exception:  # a frame the link refuses must not stall every later one
                log.exception("could not send a %s frame to the agent; it is dropped", frame[0])
            self._sent += 1
            self._progress.set()
