"""One batch child process: its own process group, output pumped in large chunks, stdin fed from
the agent's `input` ops when the child blocks reading it, interrupt with SIGKILL escalation.

Output is read straight from the pipe file descriptors (no StreamReader copies), each read
becoming one frame of at most `CHUNK` (<= 1 MiB) bytes. The pipes are enlarged to 1 MiB
(F_SETPIPE_SZ) so a fast writer is not throttled by 64 KiB pipe buffers; while output streams the
reader pauses briefly so the writer fills large frames, timed on a timerfd so that a fast writer
does not wait on a full pipe (docs/performance.md#batch-path).

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
import select
import signal
import struct
import subprocess
import termios
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

from . import procfacts
from .batch_pacing import FineTimer, Pacing
from .procfacts import group_alive

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20  # the largest frame
# Bytes per read, and so per frame: below the runner's malloc mmap threshold, so the frame's buffer
# is reused heap memory. A bigger read gets a fresh mmap whose pages fault in one by one while the
# kernel copies into them, several times the cost of the copy (docs/performance.md#batch-path).
CHUNK = min(READ_SIZE, procfacts.MALLOC_MMAP_THRESHOLD - (4 << 10))
PIPE_SIZE = 1 << 20
F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032
MIN_PAUSE = 0.0001  # s: a shorter pause is not worth a wake-up; the pump reads at once
BURST = 0.005  # s since the last chunk during which output counts as streaming

Send = Callable[[str, bytes | str | dict], Awaitable[None]]


def _enlarge(fd: int) -> int:
    """Grow a pipe to PIPE_SIZE where the system allows it (pipe-max-size and the per-user pipe
    quota, fs/pipe-user-pages-soft, may refuse); the capacity it ends up with."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
    try:
        return fcntl.fcntl(fd, F_GETPIPE_SZ)
    except OSError:
        return 64 << 10


def _hung_up(fd: int) -> bool:
    """An empty pipe that polls readable has no writers left: end of file. (poll, not select:
    the runner may hold more than FD_SETSIZE descriptors.)"""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


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
        self.proc: subprocess.Popen[bytes] | None = None
        self.pgid: int | None = None
        self._sending = 0
        self._out_fds: list[int] = []
        self._pipe_size: dict[int, int] = {}
        self._pauses: set[asyncio.Future] = set()  # pumps' coalescing pauses, cut short at exit
        self._stdin_w: int | None = None
        self._stdin_id = ""
        self._input_wait: asyncio.Task | None = None
        self._escalation: asyncio.Task | None = None  # outlives wait(): a group may outlive its leader
        self._exited = asyncio.Event()

    async def start(self) -> None:
        """Spawn the child; OSError (not found, not executable) propagates to the caller.

        A plain Popen (vfork + exec, well under a millisecond) and a pidfd for the exit: asyncio's
        subprocess transport and its child-watcher thread cost ~2 ms per step on top."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe()
        for fd in (out_r, err_r):
            self._pipe_size[fd] = _enlarge(fd)
            os.set_blocking(fd, False)
        os.set_blocking(in_w, False)
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=in_r, stdout=out_w, stderr=err_w, cwd=self.cwd, env=self.env,
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
            code = await self._exit_code()
            self._exited.set()
            for pause in self._pauses:  # the output is complete: no point waiting for more
                if not pause.done():
                    pause.set_result(None)
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

    async def _exit_code(self) -> int:
        """Wait for the child's exit on the event loop (a pidfd turns readable), then reap it."""
        assert self.proc is not None
        try:
            pidfd = os.pidfd_open(self.proc.pid)
        except (OSError, AttributeError):  # Linux < 5.3: a thread waits instead
            return await asyncio.to_thread(self.proc.wait)
        try:
            await self._readable(pidfd)
        finally:
            os.close(pidfd)
        return self.proc.wait()

    # output ------------------------------------------------------------------------------------

    async def _pump(self, fd: int, name: str) -> None:
        # Each pass drains what the pipe holds, in reads of exactly what is there (FIONREAD) up to
        # CHUNK. While output streams (the last chunk went out less than BURST s ago) and the pipe
        # holds less than a frame, the pump first pauses (`Pacing`) so a fast writer fills large
        # frames instead of waking the runner for each 4 KiB it writes; draining first leaves the
        # writer the whole pipe meanwhile. After a quiet spell the first bytes go out at once (a
        # prompt is never held back). A pipe that could not be enlarged fills in far less than
        # a pause: there the pause would only throttle the writer, so it is skipped.
        loop = asyncio.get_running_loop()
        capacity = self._pipe_size.get(fd, 0)
        pacing = Pacing(capacity) if capacity >= PIPE_SIZE else None
        full = min(CHUNK, PIPE_SIZE // 2)
        timer: FineTimer | None = None
        last_sent = -1.0
        try:
            while True:
                pending = _pending_bytes(fd)
                if pacing and pending < full and loop.time() - last_sent < BURST and not (
                        pending == 0 and _hung_up(fd)):  # at end of file there is nothing to wait for
                    if (pause := pacing.pause_for(pending)) >= MIN_PAUSE:
                        timer = timer or FineTimer.create()
                        started, before = loop.time(), pending
                        await self._pause(pause, timer)
                        pending = _pending_bytes(fd)
                        pacing.observe(before, pending, loop.time() - started, pause)
                if not pending:
                    await self._readable(fd)
                    pending = _pending_bytes(fd)
                while True:  # drain; a readable pipe with nothing in it is at end of file
                    try:
                        data = os.read(fd, min(pending, CHUNK) if pending > 0 else CHUNK)
                    except BlockingIOError:
                        break
                    if not data:
                        return
                    await self._emit(name, data)
                    pending -= len(data)
                    if pending <= 0:
                        break
                last_sent = loop.time()
        finally:
            if timer is not None:
                timer.close()
            os.close(fd)
            self._out_fds = [-1 if f == fd else f for f in self._out_fds]  # the number may be reused

    async def _pause(self, seconds: float, timer: FineTimer | None) -> None:
        """Sleep `seconds` on `timer` (asyncio's timers where there is none); cut short when
        the program exits."""
        if self._exited.is_set():
            return
        loop = asyncio.get_running_loop()
        pause = loop.create_future()
        handle = None
        if timer is None or not timer.start(seconds, pause):
            handle = loop.call_later(seconds, lambda: pause.done() or pause.set_result(None))
        self._pauses.add(pause)
        try:
            await pause
        finally:
            if handle is not None:
                handle.cancel()
            self._pauses.discard(pause)

    @staticmethod
    async def _readable(fd: int) -> None:
        """Wait until `fd` is readable: a pipe holds data or its last writer closed it; a pidfd's
        process exited."""
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await ready
        finally:
            loop.remove_reader(fd)

    async def _emit(self, name: str, data: bytes) -> None:
        self._sending += 1
        try:
            if self.task_log is not None:
                self._log_output(data)
            await self.send(name, data)
        finally:
            self._sending -= 1

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
