"""`ReplKernel`: drive a long-running interpreter through a pty (bash_kernel's approach).

One line is sent per cell (usually "load this temp file" in the language's own terms), output is
streamed until the interpreter shows its prompt again, whole lines batched (`batching.py`). stderr
goes to a separate pipe (a FIFO the child opens as fd 2), so it stays a separate stream and tells
errors apart. A program blocked reading the pty gets an input_request; an interrupt is forwarded as
^C; an interpreter that dies is restarted and the cell reported as an error.
"""
from __future__ import annotations

import codecs
import logging
import os
import re
import secrets
import select
import shutil
import signal
import time
from pathlib import Path
from typing import Any, ClassVar

import pexpect

from .batching import StdoutBatching
from .common import StdinWatch, load_libc, default_sigint, scratch_dir

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.05
PARTIAL_FLUSH_AFTER = 0.1  # seconds a partial line waits (it may be the start of the prompt)
INTERRUPT_TIMEOUT = 5.0
HELPER_TIMEOUT = 5.0  # seconds a completion/is_complete/inspection helper gets before ^C
HELPER_INTERRUPT_WAIT = 2.0  # seconds to wait for the prompt after that ^C


class ReplDied(Exception):
    """The interpreter exited (EOF on the pty)."""


class ReplKernel(StdoutBatching):
    """Subclasses give `spawn_argv`, `prompt_re` and `cell_command`, and may filter lines."""

    prompt_re: ClassVar[re.Pattern[str]] = re.compile(r"> $")
    install_hint: ClassVar[str] = ""
    stderr_pipe: ClassVar[bool] = True
    startup_timeout: ClassVar[float] = 30.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = "KRB" + secrets.token_hex(6).upper()
        self.tmpdir = scratch_dir(self.language_info["name"])
        self.child: pexpect.spawn | None = None
        self.err_fd: int | None = None
        self.cell_no = 0
        self.start_error: str | None = None
        self.busy_helper = False  # a timed-out helper query still holds the interpreter
        self.restart_note = ""  # shown on the next cell's stderr: the state was lost
        try:
            self.start_repl()
        except Exception as exc:  # report on execute instead of dying: the front-end can show it
            log.exception("could not start the interpreter")
            self.start_error = f"{type(exc).__name__}: {exc}"

    # -- to override ------------------------------------------------------------------------
    def spawn_argv(self) -> list[str]:
        raise NotImplementedError

    def repl_env(self) -> dict[str, str]:
        return dict(os.environ, TERM="dumb", PAGER="cat")

    def after_start(self) -> None:
        """Commands run once the first prompt is there (prompt changes, preludes)."""

    def cell_command(self, code: str) -> str:
        """The single line that runs `code` (usually: load the temp file `self.cell_file(code)`)."""
        raise NotImplementedError

    def begin_cell(self) -> None:
        """Reset per-cell state before a cell is sent."""

    def on_line(self, line: str) -> str | None:
        """Filter one stdout line of a cell (with its newline); None swallows it."""
        return line

    def finish_cell(self, stderr_text: str) -> dict[str, Any]:
        """The execute_reply once the prompt is back; default: ok."""
        return self.ok()

    def interrupt_repl(self) -> None:
        """Stop a running cell; default: ^C through the pty (SIGINT to its foreground group)."""
        assert self.child
        self.child.sendintr()

    def after_interrupt(self, partial: str) -> bool:
        """Bring the interpreter back to its top level if ^C left it elsewhere (`partial`: the
        pending unfinished output line). True when `partial` was consumed (not to be shown)."""
        return False

    # -- lifecycle ----------------------------------------------------------------------------
    def missing_toolchain(self) -> str | None:
        exe = self.spawn_argv()[0]
        return None if shutil.which(exe, path=self.repl_env().get("PATH")) else exe

    def start_repl(self) -> None:
        missing = self.missing_toolchain()
        if missing:
            self.start_error = f"{missing} is not installed. {self.install_hint}".strip()
            return
        fifo = None
        if self.stderr_pipe:
            fifo = self.tmpdir / "stderr.fifo"
            if fifo.exists():
                fifo.unlink()
            os.mkfifo(fifo, 0o600)
            if self.err_fd is not None:
                os.close(self.err_fd)
            # our end first, non-blocking, so the child's open for writing never waits
            self.err_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)

        def preexec() -> None:
            default_sigint()
            if fifo is not None:
                fd = os.open(fifo, os.O_WRONLY)
                os.dup2(fd, 2)
                os.close(fd)

        argv = self.spawn_argv()
        load_libc()  # loaded here: the forked child only calls prctl through it
        self.child = pexpect.spawn(argv[0], argv[1:], echo=False, encoding="utf-8",
                                   codec_errors="replace", env=self.repl_env(), cwd=os.getcwd(),
                                   preexec_fn=preexec, dimensions=(50, 200))
        self.child.delaybeforesend = None
        self.wait_prompt(emit=False, timeout=self.startup_timeout)
        self.after_start()

    def restart_repl(self) -> None:
        self.kill_repl()
        self.busy_helper = False
        self.start_repl()

    def kill_repl(self) -> None:
        if self.child is not None:
            try:
                os.killpg(self.child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):  # already gone (or reaped): close() below
                log.debug("interpreter group %d already gone", self.child.pid)
            self.child.close(force=True)
            self.child = None

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        self.kill_repl()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        return {"status": "ok", "restart": restart}

    # -- running ------------------------------------------------------------------------------
    def cell_file(self, code: str, suffix: str) -> Path:
        self.cell_no += 1
        path = self.tmpdir / f"cell{self.cell_no}{suffix}"
        path.write_text(code if code.endswith("\n") else code + "\n")
        old = self.tmpdir / f"cell{self.cell_no - 2}{suffix}"
        old.unlink(missing_ok=True)
        return path

    def run_cell(self, code: str) -> dict[str, Any]:
        if self.start_error:
            return self.fail("InterpreterNotAvailable", self.start_error)
        if self.child is None or not self.child.isalive():
            self.announce_restart("the interpreter had exited")
        elif self.busy_helper:
            reply = self.finish_helper()
            if reply is not None:
                return reply
        self.show_restart_note()
        self.begin_cell()
        try:
            self.child.sendline(self.cell_command(code))  # type: ignore[union-attr]
            stderr_text = self.wait_prompt(emit=True, timeout=None)
        except KeyboardInterrupt:
            self.recover_from_interrupt()
            return self.interrupted()
        except ReplDied:
            self.restart_repl()
            return self.died_reply()
        return self.finish_cell(stderr_text)

    def died_reply(self) -> dict[str, Any]:
        return self.fail("InterpreterDied", "the interpreter exited; it was restarted (state is lost)")

    def recover_from_interrupt(self) -> None:
        try:
            self.interrupt_repl()
            deadline = time.monotonic() + INTERRUPT_TIMEOUT
            while True:
                try:
                    self.wait_prompt(emit=True, timeout=max(0.1, deadline - time.monotonic()),
                                     on_quiet=self.after_interrupt, answer_stdin=False)
                    return
                except KeyboardInterrupt:  # a second interrupt while recovering
                    if time.monotonic() > deadline:
                        raise TimeoutError from None
        except (TimeoutError, ReplDied):
            self.announce_restart(f"the interpreter did not come back within {INTERRUPT_TIMEOUT:.0f} s of the interrupt")
            self.show_restart_note()

    def show_restart_note(self) -> None:
        if self.restart_note:
            self.stream("stderr", self.restart_note)
            self.restart_note = ""

    def announce_restart(self, why: str) -> None:
        """Restart the interpreter and tell the user, on the next output they see, that its state
        is gone (a restart is never silent: docs/security.md#faults-nothing-is-lost-silently)."""
        log.warning("restarting the interpreter: %s", why)
        self.restart_repl()
        self.restart_note = f"[{why}; it was restarted and its state (variables, definitions) was lost]\n"

    def query(self, command: str, timeout: float = HELPER_TIMEOUT) -> str:
        """Run a helper command (completion, is_complete, inspection) and return its stdout.

        A helper that does not answer within `timeout` is interrupted (^C), never killed: the
        user's interpreter and its state stay. If even the interrupt does not bring the prompt
        back, the helper is left running (`busy_helper`) and the next cell waits for it.
        """
        if self.child is None or self.start_error:
            return ""
        if self.busy_helper and self.finish_helper(wait=0.0) is None and self.busy_helper:
            return ""  # the previous helper is still running: answer "nothing" rather than queue
        lines: list[str] = []
        self.child.sendline(command)
        try:
            self.wait_prompt(emit=False, timeout=timeout, collect=lines)
        except ReplDied:
            self.announce_restart("the interpreter exited while answering a completion or inspection")
            return ""
        except TimeoutError:
            log.warning("helper query %r got no answer within %.1f s; interrupting it", command[:60], timeout)
            self.busy_helper = True
            try:
                self.interrupt_repl()
            except OSError as exc:
                log.warning("could not interrupt the helper query: %s", exc)
            self.finish_helper(wait=HELPER_INTERRUPT_WAIT)
            return ""
        return "".join(lines)

    def finish_helper(self, wait: float | None = None) -> dict[str, Any] | None:
        """Wait for the prompt a slow helper query still holds (None = until it comes or the
        user interrupts). Returns an execute_reply when the cell cannot run, else None."""
        if wait is None:
            self.stream("stderr", "[waiting for a slow completion or inspection request to finish; "
                                  "interrupt to stop it]\n")
        try:
            self.wait_prompt(emit=False, timeout=wait, collect=[], on_quiet=self.after_interrupt,
                             answer_stdin=False)
        except TimeoutError:
            return None  # still busy: the caller decides (a later cell waits for it)
        except KeyboardInterrupt:  # the user interrupted the cell that waited for the helper
            self.recover_from_interrupt()
            self.busy_helper = False
            return self.interrupted()
        except ReplDied:
            self.announce_restart("the interpreter exited while answering a completion or inspection")
        self.busy_helper = False
        return None

    def wait_prompt(self, *, emit: bool, timeout: float | None,
                    collect: list[str] | None = None, on_quiet: Any = None,
                    answer_stdin: bool = True) -> str:
        """Stream output until the prompt; return what came on stderr meanwhile."""
        with self.batched_stdout(emit and collect is None):
            return self._wait_prompt(emit, timeout, collect, on_quiet, answer_stdin)

    def _wait_prompt(self, emit: bool, timeout: float | None, collect: list[str] | None,
                     on_quiet: Any, answer_stdin: bool) -> str:
        assert self.child is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        partial = ""
        last_data = time.monotonic()
        stderr_parts: list[str] = []
        err_decoder = codecs.getincrementaldecoder("utf-8")("replace")
        fds = [self.child.child_fd] + ([self.err_fd] if self.err_fd is not None else [])
        watch = StdinWatch(self.child.pid)

        def out(text: str) -> None:
            if collect is not None:
                collect.append(text)
            elif emit:
                shown = self.on_line(text)
                if shown:
                    self.stream("stdout", shown)

        err_partial = ""

        def drain_stderr(flush: bool = False) -> None:
            """Read stderr; emit whole lines (some runtimes write it a character at a time)."""
            nonlocal err_partial
            while self.err_fd is not None:
                try:
                    data = os.read(self.err_fd, 65536)
                except BlockingIOError:
                    break
                if not data:
                    break
                text = err_decoder.decode(data)
                stderr_parts.append(text)
                err_partial += text
            cut = len(err_partial) if flush else err_partial.rfind("\n") + 1
            if cut and emit and collect is None:
                shown = self.on_stderr(self.clean_stderr(err_partial[:cut]))
                if shown:
                    self.stream("stderr", shown)
            err_partial = err_partial[cut:] if cut else err_partial

        while True:
            ready, _, _ = select.select(fds, [], [], POLL_INTERVAL)
            if self.err_fd in ready:
                drain_stderr()
            if self.child.child_fd in ready:
                try:
                    chunk = self.child.read_nonblocking(65536, 0)
                except pexpect.TIMEOUT:
                    chunk = ""
                except pexpect.EOF:
                    drain_stderr(flush=True)
                    if partial:
                        out(partial)
                    raise ReplDied from None
                last_data = time.monotonic()
                partial = (partial + chunk).replace("\r\n", "\n")  # a \r\n may span two reads
                *lines, partial = partial.split("\n")
                for line in lines:
                    out(line + "\n")
                m = self.prompt_re.search(partial)
                if m:
                    if m.start():
                        out(partial[: m.start()])
                    drain_stderr(flush=True)
                    self.prompt_match = m
                    return "".join(stderr_parts)
                self.flush_batch(unless_recent=True)
                continue
            if ready:
                continue
            # quiet: send held lines, show a pending partial line, answer a read on stdin, check the deadline
            self.flush_batch()
            now = time.monotonic()
            if err_partial:
                drain_stderr(flush=True)
            if on_quiet is not None and now - last_data > PARTIAL_FLUSH_AFTER:
                if on_quiet(partial):
                    partial = ""
                on_quiet = None
            if partial and now - last_data > PARTIAL_FLUSH_AFTER and not self.could_be_prompt(partial):
                out(partial)
                partial = ""
            if answer_stdin and emit and collect is None and watch.waiting():
                # the prompt text may have been written just before the read: show it first
                while select.select([self.child.child_fd], [], [], 0)[0]:
                    try:
                        partial = (partial + self.child.read_nonblocking(65536, 0)).replace("\r\n", "\n")
                    except (pexpect.TIMEOUT, pexpect.EOF):
                        break
                *lines, partial = partial.split("\n")
                for line in lines:
                    out(line + "\n")
                if partial:
                    out(partial)
                    partial = ""
                drain_stderr(flush=True)
                self.feed_stdin()
                watch.last = None
                last_data = time.monotonic()
            if deadline is not None and now > deadline:
                raise TimeoutError("no prompt from the interpreter")

    def on_stderr(self, text: str) -> str | None:
        """Filter stderr text (whole lines) before it is streamed; None holds it back."""
        return text

    def clean_stderr(self, text: str) -> str:
        """stderr as shown: without the path of our temp cell files."""
        return text.replace(f"{self.tmpdir}/", "")

    def could_be_prompt(self, partial: str) -> bool:
        """True when `partial` may still grow into the prompt (held back a little longer)."""
        return False

    def feed_stdin(self) -> None:
        from ipykernel.kernelbase import StdinNotImplementedError  # type: ignore[attr-defined]

        assert self.child
        try:
            line = self.raw_input("")
        except (StdinNotImplementedError, EOFError):  # no stdin channel: the program sees EOF
            log.info("input requested but the front-end has no stdin: sending EOF")
            self.child.sendeof()
            return
        self.child.sendline(line)

