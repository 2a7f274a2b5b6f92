"""Start a REPL's process before the kernel's own imports, and drive it without pexpect's pauses.

A Jupyter kernel process spends most of its start-up importing ipykernel (and IPython through
it); the REPL it wraps (bash reading its rc files, octave loading its packages) can start in the
meantime. `spawn_early` is called first thing by a kernel's `__main__`, before those imports, and
`take_early` hands the process to the kernel when it wraps its REPL (docs/performance.md).

pexpect waits `delaybeforesend` (50 ms) before every write to the child, a guard against
programs that drop input typed before their prompt. The REPLs driven here read their tty
line by line after printing a prompt we wait for, so the pause only adds 50 ms to every
command (bash_kernel sends two per cell) and seconds to start-up scripts of many lines.
"""
from __future__ import annotations

import signal
from typing import Any

import pexpect

_early: dict[str, pexpect.spawn] = {}


def spawn_repl(command: str, args: list[str], **kwargs: Any) -> pexpect.spawn:
    """`pexpect.spawn` with default SIGINT/SIGPIPE in the child and no pause before sends."""
    old_int = signal.signal(signal.SIGINT, signal.SIG_DFL)
    old_pipe = signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `yes | head` must end
    try:
        child = pexpect.spawn(command, args, **kwargs)
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGPIPE, old_pipe)
    child.delaybeforesend = None
    return child


def spawn_early(key: str, command: str, args: list[str], **kwargs: Any) -> None:
    """Start the REPL now; a failure is left to the kernel's own start, which reports it."""
    try:
        _early[key] = spawn_repl(command, args, **kwargs)
    except Exception:  # noqa: BLE001 - the normal start path raises the real error
        pass


def take_early(key: str) -> pexpect.spawn | None:
    """The early process for `key`, once (a restart starts a fresh one); None if none is alive."""
    child = _early.pop(key, None)
    if child is not None and not child.isalive():
        child.close(force=True)
        return None
    return child
