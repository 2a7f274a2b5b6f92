"""The reaper: ends what is left of the runner's process tree once the runner is gone, even when
it was SIGKILLed (docs/services.md#dying-with-the-runner).

setpriv's death signal reaches the process the runner forked, not what that process started in
turn: a service's grandchildren, a web-terminal shell's background jobs, a subprocess a kernel's
user started. Once their parent dies they are re-parented and nothing finds them through the tree.
So a small helper process (`reaper_helper.py`, run by `python -I -S` as a plain script) holds the
read end of a pipe whose only write end is the runner's. While the runner lives, the helper looks
at the runner's process tree twice a second and remembers every session in it (services, kernels
and the programs they start each run in a session of their own), plus the pids of the runner's own
session; the runner also writes every session it starts to the pipe at once (`<sid> <start
time>`). When the pipe reaches end of file, which happens however the runner ended, the helper
SIGKILLs every process still in one of those sessions, in sessions found below them, and the
remembered pids, then exits. A pid or
session id taken over by a newer process (pid reuse) is told apart by its start time.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from ..procfacts import start_time

log = logging.getLogger(__name__)

HELPER = Path(__file__).with_name("reaper_helper.py")  # run as a script: nothing of ours is imported


class Reaper:
    """The runner's side: `start()` launches the helper (the service manager does, once per
    runner); `watch()` tells it a new session at once (its own look at the tree comes only every
    half second). Sessions watched before `start()` are told when it starts."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._wanted = False
        self._sessions: dict[int, int] = {}  # told again to a helper started anew

    def start(self) -> bool:
        """Start the helper unless it runs; False when it cannot be started (logged)."""
        with self._lock:
            self._wanted = True
            return self._start_locked()

    def _start_locked(self) -> bool:
        if self._proc is not None and self._proc.poll() is None:
            return True
        try:
            # Its own session: a ^C or SIGTERM for the runner's group must not end it first.
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(HELPER), str(os.getpid())],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            log.warning("cannot start the reaper (%s): what the runner starts may outlive a killed runner", exc)
            self._proc = None
            return False
        log.debug("reaper started (pid %d)", self._proc.pid)
        if self._sessions:
            self._send(self._sessions.items())
        return True

    def _send(self, sessions: Iterable[tuple[int, int]]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write("".join(f"{s} {t}\n" for s, t in sessions).encode())
            self._proc.stdin.flush()
        except OSError as exc:  # the helper was killed: the next watch() starts another
            log.warning("the reaper is gone (%s)", exc)
            self._proc = None

    def watch(self, sid: int) -> None:
        """Have session `sid` (led by pid `sid`, just started) ended when the runner is gone."""
        start = start_time(sid)
        if start is None:
            return  # already gone
        with self._lock:
            self._sessions[sid] = start
            if self._wanted and self._start_locked() and self._proc is not None:
                self._send([(sid, start)])


REAPER = Reaper()


def watch_session(sid: int) -> None:
    """Register a session the runner just started with the process-wide reaper."""
    REAPER.watch(sid)
