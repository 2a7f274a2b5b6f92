"""Stream output of the Python kernel in pieces of at most 1 MiB, sent as soon as a piece is full.

ipykernel buffers `sys.stdout`/`sys.stderr` and publishes the buffer every 0.2 s: a program that
prints fast sends one stream message of up to ~100 MB. Every client must then receive, verify and
decode that whole message at once before it can show the first byte of it, and holds it in memory
several times over meanwhile. Here a full piece goes out at once, no message carries more than
one piece, and a writer that filled a piece waits until it is sent (so a burst never exceeds the
iopub socket's 1000-message high-water mark, and the pieces leave evenly, not in bursts), so output
flows through the runner (and any Jupyter client) in bounded steps.
Small, slow output is unchanged: it still goes out on ipykernel's 0.2 s flush.
Pieces of the runner's own queries go to the runner's output channel instead of iopub
(runner_output.py; docs/query-mode.md#the-output-channel).

Loaded by the Python kernel as an IPython extension (`--ext=ai.backend.kernel.python.outstream`);
it only changes the class of the kernel's own stream objects, and does nothing where those are not
ipykernel's `OutStream` or ipykernel lacks what it relies on. See docs/query-mode.md#slow-agents.
"""
from __future__ import annotations

import os
from typing import Any

try:
    from ipykernel.iostream import OutStream
except ImportError:  # not in a kernel: nothing to do
    OutStream = None  # type: ignore[assignment,misc]

PIECE_CHARS = 1 << 20  # a piece is at most 1 Mi characters (1 MiB for ASCII output)
# Pieces a writer may get ahead of the IO thread before it waits for it. 1: it waits for each piece.
# Further ahead, the IO thread gets the GIL from the busy writer only every 5 ms (the switch
# interval): the first piece left ~20 ms late and the rest in bursts, which the runner (one hop
# further) took longer to pass on (docs/performance.md#query-path).
AHEAD_PIECES = 1

# What the quick write needs of ipykernel's OutStream (ipykernel >= 6.29); without it, every write
# takes ipykernel's own path.
_QUICK_WRITE_NEEDS = ("parent_header", "echo", "pub_thread", "_buffer_lock", "_buffers", "_flush_pending",
                      "_schedule_flush")
_in_kernel_process = True  # False in a child forked from the kernel (os.getpid() on every write costs)


def _forked() -> None:
    global _in_kernel_process
    _in_kernel_process = False


if OutStream is not None and hasattr(OutStream, "_flush_buffers"):
    os.register_at_fork(after_in_child=_forked)

    class PiecewiseOutStream(OutStream):  # type: ignore[misc,valid-type]
        """An `OutStream` that sends a piece once it is full, never sends more than a piece per
        message, and lets the writer get at most AHEAD_PIECES pieces ahead of what is sent."""

        _krb_pending = 0  # characters written since the last piece was scheduled (approximate, unlocked)
        _krb_scheduled = 0  # pieces scheduled since the writer last waited
        _krb_quick = False  # install() sets it where ipykernel has what the quick write needs
        # (parent header, its buffer key) of the last write: one tuple, so that threads writing
        # under different parents never pair one's header with the other's key
        _krb_last: tuple[Any, Any] = (None, None)
        _krb_runner_output: Any = None  # runner_output.RunnerOutput, when the runner asked for it

        def write(self, string: str) -> int | None:
            size = len(string) if isinstance(string, str) else 0
            if (self._krb_pending and self._krb_pending + size > PIECE_CHARS and self.pub_thread is not None
                    and _in_kernel_process):
                # This write would overflow the piece being filled: that piece goes first, whole. A
                # write straddling it would leave a small remainder behind, sent as a message of its
                # own: twice the messages for lines that do not divide 1 Mi (a raw client reading
                # behind then lost output to its 1000-message high-water mark).
                self._krb_piece_full()
            # ipykernel's write, without what it recomputes on every call (its buffer key, a frozenset
            # of the parent header; os.getpid()) when the parent is the one of the last write: a cell
            # printing line by line spends most of its time there (docs/performance.md#query-path)
            parent = self.parent_header
            last = self._krb_last
            if (last[0] is parent and type(string) is str and self._krb_quick and _in_kernel_process
                    and self.echo is None and self.pub_thread is not None):
                with self._buffer_lock:
                    self._buffers[last[1]].write(string)
                if not self._flush_pending:
                    self._schedule_flush()
                written: int | None = size
            else:
                written = super().write(string)
                if self._krb_quick:
                    self._krb_last = (parent, frozenset(parent.items()))
            self._krb_pending += size
            if self._krb_pending >= PIECE_CHARS and self.pub_thread is not None and _in_kernel_process:
                self._krb_piece_full()  # one write of a piece or more
            return written

        def _krb_piece_full(self) -> None:
            self._krb_pending = 0
            self._krb_scheduled += 1
            if self._krb_scheduled < AHEAD_PIECES:
                self.pub_thread.schedule(self._flush)  # in the IO thread, as ipykernel's own flushes
            else:
                # Wait for the IO thread to send what is buffered. Without this a fast writer fills
                # the buffer with hundreds of pieces that then leave in one burst, and the iopub
                # socket drops what exceeds its high-water mark (1000 messages).
                self._krb_scheduled = 0
                self.flush()

        def _flush_buffers(self) -> Any:
            runner = self._krb_runner_output if _in_kernel_process else None
            for parent, data in super()._flush_buffers():
                for start in range(0, len(data), PIECE_CHARS):
                    piece = data if len(data) <= PIECE_CHARS else data[start:start + PIECE_CHARS]
                    # the runner's own queries: written to its output channel instead (runner_output.py)
                    if runner is None or not runner.take(parent, self.name, piece):
                        yield parent, piece
else:
    PiecewiseOutStream = None  # type: ignore[assignment,misc]


def install(streams: tuple[Any, ...], runner_output: Any = None) -> int:
    """Switch each ipykernel stream in `streams` to the piecewise class, its runner's queries' output
    going to `runner_output` (a runner_output.RunnerOutput) if given; returns how many."""
    if PiecewiseOutStream is None:
        return 0
    switched = 0
    for stream in streams:
        if type(stream) is OutStream:
            stream.__class__ = PiecewiseOutStream
            stream._krb_quick = all(hasattr(stream, name) for name in _QUICK_WRITE_NEEDS)
            stream._krb_runner_output = runner_output
            switched += 1
    return switched


def load_ipython_extension(shell: Any) -> None:
    import sys

    from . import captured_output, runner_output

    # the output of the runner's own queries goes to its output channel (runner_output.py)
    install((sys.stdout, sys.stderr), runner_output.connect_from_env() if PiecewiseOutStream is not None else None)
    # what the cell's children wrote to fd 1 and 2 is published with the cell (captured_output.py)
    captured_output.register(shell, (sys.stdout, sys.stderr))
