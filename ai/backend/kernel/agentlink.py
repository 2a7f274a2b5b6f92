"""The agent link: what batch, bridge and services may use of the connection to the agent.

`AgentLink` is the whole written interface (docs/architecture.md#what-may-batch-use-from-the-runner): send a frame, take the next user input, look at the next queued op. The runner owns the
one real implementation, `SocketAgentLink`, which also holds the serial task queue and the
pending user inputs; tests give the subsystems their own `AgentLink` that records frames.
"""
from __future__ import annotations

import asyncio
import collections
from abc import ABC, abstractmethod

import zmq.asyncio

from . import protocol


class AgentLink(ABC):
    """The agent as a subsystem sees it."""

    @abstractmethod
    async def send(self, msg_type: str, payload: protocol.Payload = b"") -> None:
        """Push one frame to the agent (waits while the agent is not reading)."""

    @abstractmethod
    async def next_user_input(self) -> str:
        """The text of the next `input` op (waits for it)."""

    @abstractmethod
    async def wait_next_queued_op(self, timeout: float) -> str | None:
        """The op queued right behind the running task, waiting up to `timeout` s for one to arrive
        (the agent sends a batch's clean/build/exec back to back); None if the queue stays empty."""


class SocketAgentLink(AgentLink):
    """The runner's link: its PUSH socket, its serial task queue and the agent's `input` texts."""

    def __init__(self) -> None:
        self._outsock: zmq.asyncio.Socket | None = None
        self._queue: collections.deque[protocol.Request] = collections.deque()
        self._queue_changed = asyncio.Event()
        self._user_inputs: asyncio.Queue[str] = asyncio.Queue()

    def attach(self, outsock: zmq.asyncio.Socket) -> None:
        self._outsock = outsock

    async def send(self, msg_type: str, payload: protocol.Payload = b"") -> None:
        """Push one two-frame message to the agent (awaits while the agent is not reading)."""
        assert self._outsock is not None
        name = msg_type.encode("ascii")
        data = protocol.encode_payload(payload)
        # copy=False: pyzmq hands large payloads to libzmq without another copy (small ones are
        # still copied, below its copy threshold)
        if len(data) <= protocol.MAX_OUTPUT_FRAME or msg_type not in protocol.SPLITTABLE_FRAMES:
            await self._outsock.send_multipart([name, data], copy=False)
            return
        # The agent cuts frames above 10 MiB; output may be split anywhere (it decodes incrementally).
        view = memoryview(data)
        for start in range(0, len(data), protocol.MAX_OUTPUT_FRAME):
            await self._outsock.send_multipart([name, view[start:start + protocol.MAX_OUTPUT_FRAME]], copy=False)

    # ---- user input ------------------------------------------------------------------------
    def put_user_input(self, text: str) -> None:
        self._user_inputs.put_nowait(text)

    async def next_user_input(self) -> str:
        return await self._user_inputs.get()

    # ---- the serial task queue -------------------------------------------------------------
    def enqueue(self, request: protocol.Request) -> None:
        self._queue.append(request)
        self._queue_changed.set()

    def enqueue_first(self, request: protocol.Request) -> None:
        """Ahead of everything queued (`bootstrap.sh`, the first task of every start)."""
        self._queue.appendleft(request)
        self._queue_changed.set()

    async def next_task(self) -> protocol.Request:
        """Take the oldest queued request (waits for one)."""
        while not self._queue:
            self._queue_changed.clear()
            await self._queue_changed.wait()
        return self._queue.popleft()

    def next_queued_op(self) -> str | None:
        return self._queue[0].op if self._queue else None

    async def wait_next_queued_op(self, timeout: float) -> str | None:
        if self._queue or timeout <= 0:
            return self.next_queued_op()
        self._queue_changed.clear()
        try:
            await asyncio.wait_for(self._queue_changed.wait(), timeout)
        except TimeoutError:
            pass
        return self.next_queued_op()
