"""Kernel messages waiting for a slow agent: in order, never dropped by ZeroMQ, in bounded memory.

A kernel publishes its output on a PUB socket, which drops messages for a subscriber that falls
behind, and never waits. So the bridge reads its iopub as fast as the kernel writes, whatever the
agent's pace, and queues the raw messages here; a second task takes them out, decodes them and
hands them to the agent at the agent's pace. Up to `memory_limit` bytes wait in memory; beyond
that, messages go to an unlinked spool file (every later one too, so the order holds) until the
queue has drained. Messages are queued undecoded: the reader only copies bytes, so it keeps up
with any kernel and a shutdown never waits for it. See docs/query-mode.md#slow-agents.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import struct
import tempfile
from typing import IO, Any

from traitlets import Integer, Unicode
from traitlets.config import Configurable

from .options import from_env

log = logging.getLogger(__name__)

_COUNT = struct.Struct("!I")  # parts in a message
_LENGTH = struct.Struct("!Q")  # bytes in a part
# A stand-in queued where messages had to be dropped; a kernel message always has more parts.
DROPPED_MARK = b"krunner-bridge: dropped"


def dropped_bytes_of(parts: list[bytes]) -> int | None:
    """The byte count of a drop mark, or None for a kernel message."""
    if len(parts) == 2 and parts[0] == DROPPED_MARK:
        return int(parts[1])
    return None


class SpillQueue(Configurable):
    """A FIFO of multipart messages whose producer never waits (the iopub reader)."""

    memory_limit = from_env(Integer(32 << 20, help="bytes of query output held in memory while the agent is behind; "
                                    "the rest waits in a spool file").tag(config=True), "KRUNNER_OUTPUT_MEMORY_LIMIT")
    spool_limit = from_env(Integer(4 << 30, help="bytes of query output the spool file may hold; beyond that output "
                                   "is dropped, and the user told").tag(config=True), "KRUNNER_OUTPUT_SPOOL_LIMIT")
    spool_dir = from_env(Unicode("", help="directory of the (unlinked) spool file; default: TMPDIR, else /tmp"
                                 ).tag(config=True), "KRUNNER_OUTPUT_SPOOL_DIR")

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self._memory: collections.deque[list[bytes]] = collections.deque()
        self.memory_bytes = 0
        self.peak_memory_bytes = 0
        self._spool: IO[bytes] | None = None
        self._spool_read = 0  # offset of the next message in the spool file
        self._spool_end = 0
        self._spooled = 0  # messages in the spool file
        self._dropped = 0  # bytes dropped since the last drop mark was queued
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._memory) + self._spooled

    @property
    def spool_bytes(self) -> int:
        return self._spool_end - self._spool_read

    def put(self, parts: list[bytes]) -> None:
        """Queue one message; returns at once (beyond `spool_limit` it is dropped, and a drop
        mark takes its place in the order)."""
        size = sum(len(p) for p in parts)
        if self._spool is None and self.memory_bytes + size <= self.memory_limit:
            self._flush_drop_mark()
            self._memory.append(parts)
            self.memory_bytes += size
            self.peak_memory_bytes = max(self.peak_memory_bytes, self.memory_bytes)
        elif self.spool_bytes + size > self.spool_limit or not self._spool_write(parts):
            if not self._dropped:
                log.error("the agent is %d MiB behind: dropping kernel output until it catches up",
                          self.spool_bytes >> 20)
            self._dropped += size
            return
        self._wake()

    async def get(self) -> list[bytes]:
        """The next message (or drop mark), waiting for one if the queue is empty."""
        while True:
            if self._memory:
                parts = self._memory.popleft()
                self.memory_bytes -= sum(len(p) for p in parts)
                return parts
            if self._spooled:
                return self._spool_read_next()
            if self._dropped:  # drained after a drop: say so before anything else
                return self._take_drop_mark()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def close(self) -> None:
        """Forget everything queued (shutdown) and release the spool file."""
        if len(self):
            log.warning("shutdown: %d kernel messages were never handed to the agent", len(self))
        self._memory.clear()
        self.memory_bytes = 0
        self._close_spool()

    # ---- internals -------------------------------------------------------------------------
    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _take_drop_mark(self) -> list[bytes]:
        dropped, self._dropped = self._dropped, 0
        return [DROPPED_MARK, str(dropped).encode()]

    def _flush_drop_mark(self) -> None:
        if self._dropped:
            mark = self._take_drop_mark()
            self._memory.append(mark)  # only called while nothing is spooled

    def _spool_write(self, parts: list[bytes]) -> bool:
        """Append a message to the spool file (after the drop mark that is due); False if it failed."""
        try:
            if self._spool is None:
                self._spool = tempfile.TemporaryFile(prefix="krunner-spool-", dir=self.spool_dir or None)
                self._spool_read = self._spool_end = 0
                log.info("the agent reads slower than the kernel writes: output beyond %d MiB waits in %s",
                         self.memory_limit >> 20, self.spool_dir or tempfile.gettempdir())
            if self._dropped and parts[0] != DROPPED_MARK:
                self._append(self._spool, [DROPPED_MARK, str(self._dropped).encode()])
                self._dropped = 0
            self._append(self._spool, parts)
        except OSError as e:  # a full disk: the message is dropped, and the user told (the drop mark)
            log.error("cannot spool kernel output: %s", e)
            if self._spool is not None:
                self._spool.truncate(self._spool_end)
            return False
        return True

    def _append(self, spool: IO[bytes], parts: list[bytes]) -> None:
        spool.seek(self._spool_end)
        spool.write(_COUNT.pack(len(parts)))
        for part in parts:
            spool.write(_LENGTH.pack(len(part)))
            spool.write(part)
        spool.flush()
        self._spool_end = spool.tell()
        self._spooled += 1

    def _spool_read_next(self) -> list[bytes]:
        spool = self._spool
        assert spool is not None
        spool.seek(self._spool_read)
        (count,) = _COUNT.unpack(spool.read(_COUNT.size))
        parts = []
        for _ in range(count):
            (length,) = _LENGTH.unpack(spool.read(_LENGTH.size))
            parts.append(spool.read(length))
        self._spool_read = spool.tell()
        self._spooled -= 1
        if not self._spooled:  # caught up: back to memory only
            self._close_spool()
        return parts

    def _close_spool(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        self._spooled = 0
        self._spool_read = self._spool_end = 0
