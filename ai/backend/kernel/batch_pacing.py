"""Timing of a batch pump's coalescing pauses (docs/performance.md#batch-path).

While a program streams output, the runner pauses between reads of its pipe so that frames are
large. A pause must end before a fast writer has filled the 1 MiB pipe (in about a millisecond),
or the writer waits on it: `Pacing` aims each pause at FILL of the pipe at the rate the writer was
last seen writing, and `FineTimer` sleeps that long with microsecond resolution, where asyncio's
timers wake in whole milliseconds (epoll_wait's unit).
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os

COALESCE = 0.001  # s: the longest pause, and the first of a burst (the writer's rate not known yet)
FILL = 0.85  # of the pipe a pause aims at: room for the wake-up's lag (~0.1 ms, ~100 KiB at 1 GB/s)
LATE = 0.00025  # s a pause may overrun before the loop counts as too busy to wake on time


class _TimerSpec(ctypes.Structure):  # struct itimerspec: interval, then value (timespecs)
    _fields_ = [("interval_s", ctypes.c_long), ("interval_ns", ctypes.c_long),
                ("value_s", ctypes.c_long), ("value_ns", ctypes.c_long)]


class FineTimer:
    """A one-shot timer on the event loop with microsecond resolution: a timerfd (Python 3.11 has
    no os.timerfd_*), registered with the loop once and re-armed for each pause."""

    try:
        _libc = ctypes.CDLL(None, use_errno=True)
        _create, _settime = _libc.timerfd_create, _libc.timerfd_settime
    except (OSError, AttributeError):  # not Linux, or a libc without timerfd
        _create = _settime = None

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._waiter: asyncio.Future | None = None
        asyncio.get_running_loop().add_reader(fd, self._fired)

    @classmethod
    def create(cls) -> FineTimer | None:
        """A timer, or None where timerfd is missing (asyncio's timers serve then)."""
        if cls._create is None:
            return None
        fd = cls._create(1, os.O_NONBLOCK | os.O_CLOEXEC)  # CLOCK_MONOTONIC
        return cls(fd) if fd >= 0 else None

    def start(self, seconds: float, waiter: asyncio.Future) -> bool:
        """Resolve `waiter` after `seconds`; False if the timer could not be set (the caller then
        uses asyncio's timer: a waiter nothing resolves would stall the output)."""
        self._waiter = waiter
        ns = max(int(seconds * 1e9), 1000)
        spec = _TimerSpec(0, 0, ns // 10**9, ns % 10**9)
        return self._settime(self.fd, 0, ctypes.byref(spec), None) == 0

    def _fired(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 8)
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)
        os.close(self.fd)


class Pacing:
    """How long a streaming pump pauses: until the writer, at the rate it was last seen writing,
    has filled FILL of the pipe; at most COALESCE (the first pause of a burst, or a writer slowed
    by a busy machine, for which a longer pause gives fuller frames). COALESCE too while the last
    pause overran by more than LATE: on a busy machine the wake-up lags by a millisecond or more,
    and shorter pauses would only add wake-ups."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rate = 0.0  # bytes per second; 0 until a pause has measured it
        self.late = False  # the last pause overran

    def pause_for(self, pending: int) -> float:
        if self.rate <= 0 or self.late:
            return COALESCE
        return min(COALESCE, (self.capacity * FILL - pending) / self.rate)

    def observe(self, before: int, after: int, seconds: float, planned: float) -> None:
        """The pipe held `before` bytes, and `after` bytes `seconds` later (a pause of `planned`)."""
        self.late = seconds > planned + LATE
        if seconds <= 0 or after <= before:
            return
        if after >= self.capacity:  # full before we woke: at least this fast, probably faster
            self.rate = max(self.rate, 1.5 * (after - before) / seconds)
        else:
            self.rate = (after - before) / seconds
