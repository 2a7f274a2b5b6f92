"""Process facts read from /proc and process groups: the one place that knows them.

Used by batch mode (is the program waiting for input? is its group gone?), by the language kernels
(the same questions about a REPL or a compiled cell's program) and by services (ending a service's
whole group; dying with the runner through `pdeathsig_argv`). See
docs/architecture.md#which-room-may-use-which.

Waiting for input cannot be seen from outside except through `/proc/<pid>/task/<tid>/syscall`,
which names the system call a blocked thread sits in and its arguments. `SYSCALLS` is the single
table of the numbers that matter, per architecture; on an architecture it does not know, nothing
is ever reported as waiting (better than guessing with another architecture's numbers).
"""
from __future__ import annotations

import ctypes
import functools
import logging
import os
import platform
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

# System calls a thread waiting for input sits in, by architecture.
#   read:   read, pread64, readv, preadv (the first argument is the fd)
#   poll:   poll, ppoll;  select: select, pselect6;  epoll: epoll_wait, epoll_pwait, epoll_pwait2
SYSCALLS: dict[str, set[int]] = {
    "x86_64": {"read": {0, 17, 19, 295}, "poll": {7, 271}, "select": {23, 270}, "epoll": {232, 281, 441}},
    "aarch64": {"read": {63, 65, 67, 69}, "poll": {73}, "select": {72}, "epoll": {22, 441}},
}.get(platform.machine().replace("arm64", "aarch64"), {"read": set(), "poll": set(), "select": set(), "epoll": set()})
_EPOLL_FD0_RE = re.compile(r"^tfd:\s+0\s+events:\s+([0-9a-f]+)", re.M)
POLLIN = 0x1


def detection_available() -> bool:
    """Whether this machine lets us see blocked system calls at all."""
    return bool(SYSCALLS["read"]) and os.path.exists("/proc/self/syscall")


def process_tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc/<pid>/task/<tid>/children."""
    seen: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        seen.append(pid)
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return seen


def _blocked_calls(root: int) -> Iterator[tuple[int, int, list[int]]]:
    """(pid, syscall number, its six arguments) of every blocked thread of `root`'s tree."""
    for pid in process_tree(root):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                    fields = f.read().split()
                if len(fields) < 7 or not fields[0].isdigit():
                    continue  # "running", or no syscall
                yield pid, int(fields[0]), [int(a, 16) for a in fields[1:7]]
            except (OSError, ValueError):
                continue


def _read_mem(pid: int, addr: int, size: int) -> bytes:
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        mem.seek(addr)
        return mem.read(size)


def _polls_fd0(pid: int, nr: int, args: list[int]) -> bool:
    """Whether a poll/select/epoll wait has fd 0 in its set, asking for input."""
    if nr in SYSCALLS["poll"] and 0 < args[1] <= 64:
        # struct pollfd {int fd; short events; short revents;}: fd 0 asked for POLLIN
        data = _read_mem(pid, args[0], 8 * args[1])
        for i in range(args[1]):
            fd, events, _ = struct.unpack_from("ihh", data, 8 * i)
            if fd == 0 and events & POLLIN:
                return True
        return False
    if nr in SYSCALLS["epoll"]:
        # the GHC runtime: fd 0 armed for EPOLLIN in the epoll set it waits on
        info = Path(f"/proc/{pid}/fdinfo/{args[0]}").read_text()
        return any(int(m.group(1), 16) & POLLIN for m in _EPOLL_FD0_RE.finditer(info))
    if nr in SYSCALLS["select"] and args[0] > 0 and args[1]:
        return bool(_read_mem(pid, args[1], 1)[0] & 1)  # bit 0 of readfds: fd 0
    return False


def stdin_wait(root: int, *, pipe: str | None = None, polls: bool = True) -> str | None:
    """'read' when a thread of `root`'s tree is blocked reading its input, 'poll' when it waits in
    poll/select/epoll with fd 0 in the set (only with `polls`), else None.

    With `pipe` (the fd link text of a pipe, `pipe:[inode]`), a read counts on any fd that is that
    pipe; without it, a read on fd 0. Every thread counts (the JVM reads on a non-main thread).
    Interpreters with their own event loop (MIT Scheme, the GHC runtime) wait in poll/select with
    fd 0 in the set, which is read from /proc/<pid>/mem.
    """
    found = None
    for pid, nr, args in _blocked_calls(root):
        try:
            if nr in SYSCALLS["read"]:
                if (os.readlink(f"/proc/{pid}/fd/{args[0]}") == pipe) if pipe else args[0] == 0:
                    return "read"
            elif polls and found is None and _polls_fd0(pid, nr, args):
                found = "poll"
        except (OSError, ValueError, struct.error, IndexError):
            continue
    return found


def cpu_ticks(root: int) -> int:
    """utime+stime of `root` and its descendants, in clock ticks."""
    total = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


class StdinWatch:
    """Decides when a program waits for input, polled while it is quiet.

    A thread in read(0) is certain. A wait in poll/select/epoll with fd 0 in the set is only
    trusted when it is seen twice in a row with no CPU time used in between: event-loop runtimes
    (GHC) may keep fd 0 in their set while they are busy compiling a cell.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.last: int | None = None

    def waiting(self) -> bool:
        kind = stdin_wait(self.pid)
        if kind == "read":
            return True
        if kind is None:
            self.last = None
            return False
        ticks = cpu_ticks(self.pid)
        stable = self.last is not None and ticks == self.last
        self.last = ticks
        return stable


def blocked_on_stdin(pid: int) -> bool:
    """One-shot check (read(0), or a poll-type wait on fd 0)."""
    return stdin_wait(pid) is not None


def start_time(pid: int) -> int | None:
    """When `pid` started, in clock ticks after boot (/proc/<pid>/stat field 22); None when it is
    gone. With the pid it names one process for good: pids are reused, start times are not."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rfind(b")") + 2:].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to process group `pgid`; False when the group is gone (or not ours)."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def group_alive(pgid: int) -> bool:
    """Whether a process group still has a live (non-zombie) member. Orphaned members are reaped
    by the container's init, which may take a while: zombies don't count."""
    if not signal_group(pgid, 0):
        return False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


@functools.cache
def pdeathsig_argv() -> list[str]:
    """A prefix that makes the started program receive SIGKILL when the thread that started it
    dies, even by SIGKILL: util-linux's `setpriv --pdeathsig KILL --` (docs/services.md#dying-with-the-runner).

    Why a prefix: a Python preexec_fn forces a slow fork of the whole parent, and children in their
    own session are reached by nothing else once their parent is gone. The setting survives exec
    but not fork, so it covers the program itself, not what it starts. Empty (with one log line)
    where setpriv is missing or too old for `--pdeathsig` (util-linux < 2.33, non-Debian images):
    then programs start as before. The path is absolute: the child's PATH may not lead to it.
    """
    path = shutil.which("setpriv") or next(
        (p for p in ("/usr/bin/setpriv", "/bin/setpriv") if os.access(p, os.X_OK)), None)
    if path is None:
        log.info("setpriv is not installed: child processes will not die with their parent")
        return []
    try:
        probe = subprocess.run([path, "--pdeathsig", "KILL", "--", "true"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5)
        works = probe.returncode == 0
    except (OSError, subprocess.SubprocessError):
        works = False
    if not works:
        log.info("%s does not support --pdeathsig: child processes will not die with their parent", path)
        return []
    return [path, "--pdeathsig", "KILL", "--"]


# Allocations from this size up are mmapped and returned to the OS when freed: just above one agent
# output frame (<= 1 MiB), so a frame's buffer (a batch read, docs/performance.md#batch-path) is
# heap memory used again and again instead of a fresh mapping faulted in page by page.
MALLOC_MMAP_THRESHOLD = (1 << 20) + (64 << 10)
# Free memory at the top of the heap kept for reuse before it is given back: a few frames.
MALLOC_TRIM_THRESHOLD = 8 << 20


def return_large_buffers_to_the_os() -> None:
    """Serve big agent payloads from mmap so they go back to the OS when freed.

    glibc raises its mmap threshold after the first large free, after which multi-MiB frames come
    from the heap and fragment it: RSS then creeps up under a flood of huge messages. A fixed
    threshold keeps the runner's memory flat (no-op where mallopt does not exist, e.g. musl).
    """
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, MALLOC_MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, MALLOC_TRIM_THRESHOLD)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def set_process_name(name: bytes) -> None:
    """The name `ps` and `top` show for this process (at most 15 bytes)."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(15, ctypes.c_char_p(name[:15]), 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass
