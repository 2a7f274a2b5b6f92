"""One batch child process: its own process group, output pumped in large chunks, stdin fed from
the agent's `input` ops when the child blocks reading it, interrupt with SIGKILL escalation.

Output is read straight from the pipe file descriptors (no StreamReader copies) with up to 1 MiB
per read, and each read becomes one frame, so frames never exceed 1 MiB. The pipes are enlarged
to 1 MiB (F_SETPIPE_SZ) so a fast writer is not throttled by 64 KiB pipe buffers.

Blocked-on-stdin detection asks `procfacts.stdin_wait` about the child's process tree (a blocking
read on the stdin pipe); it covers programs that read stdin with read/readv/pread (C stdio, Java,
Go, Rust, Python's sys.stdin, shells, scheme), not event-loop readers such as Node.js.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import signal
import struct
import termios
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

from . import procfacts
from .procfacts import group_alive

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20  # bytes per read, and so the largest frame
PIPE_SIZE = 1 << 20
F_SETPIPE_SZ = 1031

Send = Callable[[str, bytes | str | dict], Awaitable[None]]


def _pending_bytes(fd: int) -> int:
    """Bytes waiting in a pipe (either end) that nobody has read yet."""
    try:
        buf = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
        return int(struct.unpack("i", buf)[0])
    except OSError:
        return 0


class BatchChild:
    """A running batch command. `wait()` returns its exit code once it exited and its output
    (up to `drain_timeout` after the exit, for background processes holding the pipes) was sent."""

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: Path,
        send: Send,
        next_input: Callable[[], Awaitable[str]] | None,
        task_log: BinaryIO | None = None,
        poll_interval: float = 0.1,
        drain_timeout: float = 2.0,
    ) -> None:
        self.argv, self.env, self.cwd = argv, env, cwd
        self.send, self.next_input, self.task_log = send, next_input, task_log
        self.poll_interval, self.drain_timeout = poll_interval, drain_timeout
        self.proc: asyncio.subprocess.Process | None = None
        self.pgid: int | None = None
        self._sending = 0
        self._out_fds: list[int] = []
        self._stdin_w: int | None = None
        self._stdin_id = ""
        self._input_wait: asyncio.Task | None = None
        self._escalation: asyncio.Task | None = None  # outlives wait(): a group may outlive its leader
        self._exited = asyncio.Event()

    async def start(self) -> None:
        """Spawn the child; OSError (not found, not executable) propagates to the caller."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe()
        for fd in (out_r, err_r):
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
            os.set_blocking(fd, False)
        os.set_blocking(in_w, False)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=in_r, stdout=out_w, stderr=err_w, cwd=self.cwd, env=self.env,
                start_new_session=True, close_fds=True)
        except BaseException:
            for fd in (out_r, err_r, in_w):
                os.close(fd)
            raise
        finally:
            for fd in (out_w, err_w, in_r):
                os.close(fd)
        self.pgid = self.proc.pid  # session leader: its pid is the group id
        self._out_fds = [out_r, err_r]
        self._stdin_w = in_w
        self._stdin_id = f"pipe:[{os.fstat(in_w).st_ino}]"
        if self.next_input is None:
            self._close_stdin()  # nobody can answer (e.g. bootstrap.sh): reading stdin gets EOF

    async def wait(self) -> int:
        assert self.proc is not None
        pumps = [asyncio.create_task(self._pump(fd, name))
                 for fd, name in zip(self._out_fds, ("stdout", "stderr"))]
        watcher = asyncio.create_task(self._watch_stdin()) if self.next_input else None
        try:
            code = await self.proc.wait()
            self._exited.set()
            if watcher:
                watcher.cancel()
            done, pending = await asyncio.wait(pumps, timeout=self.drain_timeout)
            if pending:
                log.info("%s exited but its output pipes are still open: not waiting for them", self.argv[0])
            return code
        finally:
            self._exited.set()
            for task in [*pumps, *([watcher] if watcher else [])]:
                task.cancel()
            await asyncio.gather(*pumps, *([watcher] if watcher else []), return_exceptions=True)
            self._close_stdin()

    # output ------------------------------------------------------------------------------------

    async def _pump(self, fd: int, name: str) -> None:
        # Each read takes exactly what the pipe holds (FIONREAD), up to READ_SIZE: an oversized
        # read buffer costs an mmap/munmap per read in this process (docs/performance.md). While
        # output streams (the previous chunk went out less than `burst` s ago) and the pipe holds
        # less than a full frame, wait `coalesce` s before reading, so a fast writer fills large
        # frames instead of the runner waking for every few KiB it writes. The first chunk after
        # a quiet spell is read and sent at once.
        coalesce, burst, full = 0.001, 0.005, READ_SIZE // 2
        loop = asyncio.get_running_loop()
        last_sent = -1.0
        try:
            while True:
                pending = _pending_bytes(fd)
                if 0 < pending < full and loop.time() - last_sent < burst:
                    await asyncio.sleep(coalesce)
                    pending = _pending_bytes(fd)
                try:
                    data = os.read(fd, min(pending, READ_SIZE) if pending else READ_SIZE)
                except BlockingIOError:
                    ready = loop.create_future()
                    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
                    try:
                        await ready
                    finally:
                        loop.remove_reader(fd)
                    continue
                if not data:
                    return
                self._sending += 1
                try:
                    if self.task_log is not None:
                        self._log_output(data)
                    await self.send(name, data)
                finally:
                    self._sending -= 1
                last_sent = loop.time()
        finally:
            os.close(fd)
            self._out_fds = [-1 if f == fd else f for f in self._out_fds]  # the number may be reused

    def _log_output(self, data: bytes) -> None:
        try:
            self.task_log.write(data)  # type: ignore[union-attr]
        except OSError as e:
            log.warning("task log write failed, disabling it: %s", e)
            self.task_log = None

    async def settle(self, limit: float = 0.5) -> None:
        """Wait (briefly) until output already written by the child has been sent, so a prompt
        reaches the agent before the `waiting-input` that follows it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            if self._sending == 0 and not any(_pending_bytes(fd) for fd in self._out_fds if fd >= 0):
                return
            await asyncio.sleep(0.002)

    # input -------------------------------------------------------------------------------------

    def _blocked_on_stdin(self) -> bool:
        assert self.proc is not None
        if self._stdin_w is None or _pending_bytes(self._stdin_w):
            return False
        return procfacts.stdin_wait(self.proc.pid, pipe=self._stdin_id, polls=False) is not None

    async def _watch_stdin(self) -> None:
        """Serve `input` ops to a child blocked reading its stdin pipe (`"\\x04"` alone = EOF)."""
        if not procfacts.detection_available():
            return
        while self._stdin_w is not None and not self._exited.is_set():
            await asyncio.sleep(self.poll_interval)
            if not self._blocked_on_stdin():
                continue
            await self.settle()
            await self.send("waiting-input", b"")
            self._input_wait = asyncio.ensure_future(self.next_input())  # type: ignore[misc]
            try:
                text = await self._input_wait
            except asyncio.CancelledError:
                if self._exited.is_set() or asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise
                continue  # the wait was interrupted; the child may still want input later
            finally:
                self._input_wait = None
            if text == "\x04":
                self._close_stdin()
                return
            await self._feed(text.encode("utf-8") + (b"" if text.endswith("\n") else b"\n"))

    async def _feed(self, data: bytes) -> None:
        """Write to the child's stdin without blocking the loop (input may be any length)."""
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view and self._stdin_w is not None:
            try:
                view = view[os.write(self._stdin_w, view):]
            except BlockingIOError:
                writable = loop.create_future()
                loop.add_writer(self._stdin_w, lambda: writable.done() or writable.set_result(None))
                try:
                    await writable
                finally:
                    if self._stdin_w is not None:
                        loop.remove_writer(self._stdin_w)
            except OSError as e:  # EPIPE: the child closed its stdin
                if e.errno != errno.EPIPE:
                    log.warning("writing input to the child failed: %s", e)
                return

    def _close_stdin(self) -> None:
        if self._stdin_w is not None:
            with contextlib.suppress(OSError):
                os.close(self._stdin_w)
            self._stdin_w = None

    # signals -----------------------------------------------------------------------------------

    def signal_group(self, sig: int) -> bool:
        return self.pgid is not None and procfacts.signal_group(self.pgid, sig)

    def group_alive(self) -> bool:
        return self.pgid is not None and group_alive(self.pgid)

    def interrupt(self, grace: float) -> asyncio.Task | None:
        """SIGINT to the whole group; SIGKILL if the group still exists after `grace` seconds.
        Returns the escalation task (None if there was no group to signal)."""
        if not self.signal_group(signal.SIGINT):
            return None
        if self._input_wait is not None:
            self._input_wait.cancel()
        if self._escalation is None or self._escalation.done():
            self._escalation = asyncio.create_task(self._escalate(grace))
        return self._escalation

    async def _escalate(self, grace: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while loop.time() < deadline:
            if self._exited.is_set() and not self.group_alive():
                return
            await asyncio.sleep(0.05)
        log.info("process group %s ignored SIGINT for %.1f s: killing it", self.pgid, grace)
        self.signal_group(signal.SIGKILL)
