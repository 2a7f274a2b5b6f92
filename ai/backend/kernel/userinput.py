"""The batch user-input Unix socket (docs/batch.md#user-input).

Per connection: send `waiting-input` (empty payload) to the agent, wait for the next `input` op,
write it UTF-8 encoded and close. Connections are served one at a time so inputs keep their order.
The wait ends early when the client goes away (so a dead program never eats an input) or when
`interrupt()` is called.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class UserInputServer:
    def __init__(
        self,
        path: str,
        send: Callable[[str, bytes], Awaitable[None]],
        next_input: Callable[[], Awaitable[str]],
        before_prompt: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.path = path
        self.send, self.next_input, self.before_prompt = send, next_input, before_prompt
        self._server: asyncio.AbstractServer | None = None
        self._lock = asyncio.Lock()
        self._waits: set[asyncio.Future] = set()
        self._handlers: set[asyncio.Task] = set()

    async def start(self) -> None:
        """Listen on `path` (a stale socket left by an earlier runner is replaced)."""
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)
        self._server = await asyncio.start_unix_server(self._handle, self.path)
        log.debug("user-input socket listening at %s", self.path)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            async with self._lock:
                await self._serve(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("user-input connection failed")
        finally:
            writer.close()
            if task is not None:
                self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.before_prompt is not None:
            await self.before_prompt()
        await self.send("waiting-input", b"")
        wait = asyncio.ensure_future(self.next_input())
        gone = asyncio.ensure_future(self._client_gone(reader))
        self._waits.add(wait)
        try:
            await asyncio.wait({wait, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._waits.discard(wait)
            gone.cancel()
            if not wait.done():
                wait.cancel()
        if wait.cancelled() or not wait.done():
            log.info("user-input wait ended without input (interrupted or client gone)")
            return
        writer.write(wait.result().encode("utf-8"))
        await writer.drain()

    @staticmethod
    async def _client_gone(reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass  # the protocol has the client send nothing; ignore whatever it sends

    def interrupt(self) -> bool:
        """End every pending input wait; True if there was one."""
        pending = [w for w in self._waits if not w.done()]
        for wait in pending:
            wait.cancel()
        return bool(pending)

    @property
    def waiting(self) -> bool:
        return any(not w.done() for w in self._waits)

    async def close(self) -> None:
        self.interrupt()
        if self._server is not None:
            self._server.close()
            for task in list(self._handlers):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)
