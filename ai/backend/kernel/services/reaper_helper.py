"""The reaper's helper process (see reaper.py and docs/services.md#dying-with-the-runner).

Run as `python -I -S reaper_helper.py <runner pid>` with a pipe from the runner on stdin. It is a
plain script: nothing of the package is imported, so it starts fast and needs nothing of the
runner's environment. While the pipe is open it looks at the runner's process tree twice a second
and remembers the sessions in it and the pids of the runner's own session, plus the
`<sid> <start time>` lines the runner writes; at end of file it adds the sessions found below what
it is about to kill (started since its last look), SIGKILLs all of it and exits. A pid or session
id taken over by a newer process is told apart by its start time.
"""
from __future__ import annotations

import os
import select
import signal
import sys
import time

SNAPSHOT_EVERY = 0.5  # seconds between two looks at the runner's tree


def stat(pid: int | str) -> list[bytes]:
    """/proc/<pid>/stat after the command name: state, ppid, pgrp, session, ..., starttime at 19."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return data[data.rfind(b")") + 2:].split()


def start_of(pid: int) -> int | None:
    try:
        return int(stat(pid)[19])
    except (OSError, IndexError, ValueError):
        return None


def descendants(root: int) -> set[int]:
    todo, seen = [root], set()
    while todo:
        pid = todo.pop()
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
        if pid != root:
            seen.add(pid)
    return seen


class Watch:
    def __init__(self, root: int) -> None:
        self.root = root
        self.own_sid, self.root_sid = os.getsid(0), os.getsid(root)
        self.sessions: dict[int, int | None] = {}  # sid -> start time of its leader (None: gone when first seen)
        self.pids: dict[int, int] = {}  # pid -> start time, for descendants in the runner's own session

    def snapshot(self) -> None:
        for pid in descendants(self.root):
            try:
                fields = stat(pid)
                sid, start = int(fields[3]), int(fields[19])
            except (OSError, IndexError, ValueError):
                continue
            if sid == self.root_sid:
                self.pids[pid] = start
            elif sid != self.own_sid and sid not in self.sessions:
                self.sessions[sid] = start if sid == pid else start_of(sid)
        for pid in [p for p, t in self.pids.items() if start_of(p) != t]:
            del self.pids[pid]

    def targets(self) -> set[int]:
        """Sessions still ours: led by the same process as when seen, or by nobody any more."""
        found = set()
        for sid, start in self.sessions.items():
            try:
                fields = stat(sid)
                leads, now = int(fields[3]) == sid, int(fields[19])
            except (OSError, IndexError, ValueError):
                leads, now = False, None
            if not leads or now == start:
                found.add(sid)
        return found

    def members(self, targets: set[int]) -> set[int]:
        """Live pids in the sessions `targets`, and the remembered pids still alive."""
        found = {pid for pid, start in self.pids.items() if start_of(pid) == start}
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                fields = stat(entry)
                if int(fields[3]) in targets and fields[0] != b"Z":
                    found.add(int(entry))
            except (OSError, IndexError, ValueError):
                continue
        return found

    def kill_all(self) -> None:
        targets = self.targets()
        # What is about to be killed may have started sessions since the last look (a kernel's
        # interpreter): they are below it in the tree, which still stands.
        for pid in self.members(targets):
            for child in descendants(pid):
                try:
                    sid = int(stat(child)[3])
                except (OSError, IndexError, ValueError):
                    continue
                if sid != self.own_sid and sid != self.root_sid:
                    targets.add(sid)
                elif sid == self.root_sid and (start := start_of(child)) is not None:
                    self.pids[child] = start
        for _ in range(3):  # again while something was found: a member may have forked meanwhile
            killed = sum(_kill(pid) for pid in self.members(targets))
            if not killed:
                return


def _kill(pid: int) -> int:
    try:
        os.kill(pid, signal.SIGKILL)
        return 1
    except OSError:
        return 0


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)  # only the end of the pipe ends it
    watch = Watch(int(sys.argv[1]))
    buf, last = b"", 0.0
    while True:
        if time.monotonic() - last >= SNAPSHOT_EVERY:
            watch.snapshot()
            last = time.monotonic()
        if not select.select([0], [], [], SNAPSHOT_EVERY)[0]:
            continue
        data = os.read(0, 65536)
        if not data:
            break
        *lines, buf = (buf + data).split(b"\n")
        for line in lines:
            try:
                sid, start = map(int, line.split())
            except ValueError:
                continue
            watch.sessions.setdefault(sid, start)
    watch.kill_all()


if __name__ == "__main__":
    main()
