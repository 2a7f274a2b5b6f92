"""What a cell's child processes wrote to the kernel's stdout/stderr file descriptors is published
with that cell, not after it (docs/query-mode.md#output-of-child-processes).

ipykernel captures file descriptors 1 and 2 through a pipe that a thread (`OutStream._watch_pipe_fd`)
reads and writes into the stream. That thread needs the GIL, so when a cell ends right after a
child wrote (`os.system`, `subprocess.run` without capture), the cell's end-of-execution flush
often runs first: the child's output is published 0.2 s after the cell's idle status, under a
request that has ended, and a client that ended the query with it (the runner, for the agent)
never shows it. After each cell (IPython's `post_execute`), this waits until the pipe is empty and
the thread is back in its `os.read`, for at most CAPTURE_WAIT s (a child that keeps writing).

"Back in its `os.read`" is what Linux says the thread is doing (/proc/self/task/<tid>/syscall: a
call whose first argument is the pipe). Its Python frame cannot tell: a thread whose read has
returned but that waits for the GIL to go on still shows the line of the read. Without /proc the
frame is all there is, and the wait is then a best effort.

Stdlib only; registered by the outstream extension. Does nothing where ipykernel does not capture.
"""
from __future__ import annotations

import array
import fcntl
import functools
import inspect
import sys
import termios
import time
from typing import Any

CAPTURE_WAIT = 0.25  # s at most per cell
POLL = 0.0005


@functools.cache  # read from the source once, and only where /proc cannot tell (a few ms)
def _read_lines(function: Any) -> frozenset[int]:
    """The lines of the watcher's `os.read` calls: where its thread waits when it has nothing."""
    try:
        lines, first = inspect.getsourcelines(function)
    except (OSError, TypeError):
        return frozenset()
    return frozenset(first + i for i, line in enumerate(lines) if "os.read(" in line)


def _syscall(native_id: int | None) -> list[str] | None:
    """The thread's current system call and its arguments (/proc), "running", or None without /proc."""
    try:
        with open(f"/proc/self/task/{native_id}/syscall") as f:
            return f.read().split()
    except OSError:
        return None


def _pending(fd: int) -> int:
    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]


class CapturedOutputWait:
    """A `post_execute` callback: wait for ipykernel's capture threads to pass on what is waiting."""

    def __init__(self, streams: tuple[Any, ...]) -> None:
        # (pipe's read end, the thread reading it, the function that thread runs)
        self.watched: list[tuple[int, Any, Any]] = []
        for stream in streams:
            fid, thread = getattr(stream, "_fid", None), getattr(stream, "watch_fd_thread", None)
            watcher = getattr(type(stream), "_watch_pipe_fd", None)
            if fid is not None and thread is not None and hasattr(watcher, "__code__"):
                self.watched.append((fid, thread, watcher))

    def __call__(self) -> None:
        deadline = 0.0
        for fid, thread, watcher in self.watched:
            while not self._settled(fid, thread, watcher):
                now = time.monotonic()
                deadline = deadline or now + CAPTURE_WAIT
                if now >= deadline:
                    return
                time.sleep(POLL)  # (and the watcher gets the GIL)

    @staticmethod
    def _settled(fid: int, thread: Any, watcher: Any) -> bool:
        if not thread.is_alive():
            return True
        try:
            if _pending(fid):
                return False
        except OSError:  # the pipe is gone: ipykernel stopped capturing
            return True
        call = _syscall(thread.native_id)
        if call is not None:
            return call[1:2] == [hex(fid)]  # in the read of the pipe, with nothing in hand
        lines = _read_lines(watcher)
        if not lines:  # no way to tell an idle watcher from a busy one: no wait
            return True
        frame = sys._current_frames().get(thread.ident)
        return frame is None or (frame.f_code is watcher.__code__ and frame.f_lineno in lines)


def register(shell: Any, streams: tuple[Any, ...]) -> CapturedOutputWait | None:
    """Wait after every cell for `streams`' captured output; None where nothing is captured."""
    wait = CapturedOutputWait(streams)
    if not wait.watched or not hasattr(shell, "events"):
        return None
    shell.events.register("post_execute", wait)
    return wait
