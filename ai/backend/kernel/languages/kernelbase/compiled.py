"""`CompiledKernel`: compile each cell into a program and run it (c, cpp, golang, rust, java).

A cell is a whole program, or statements that `wrap` puts into an entry point. Compiler
diagnostics come back as an `error` message; the program's output is streamed as it is written;
a program blocked reading stdin gets an input_request; an interrupt sends SIGINT to its process
group. No state is kept between cells (as with Backend.AI's original query mode).
"""
from __future__ import annotations

import codecs
import logging
import os
import selectors
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, ClassVar


from .base import LanguageKernel
from .wrapping import Program, map_lines
from .common import StdinWatch, load_libc, default_sigint, pdeathsig_argv, scratch_dir

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.05  # seconds of silence before checking whether the program waits for input
KILL_GRACE = 1.0  # seconds between SIGINT and SIGKILL on interrupt


class CompileError(Exception):
    """The toolchain rejected the cell; args: (summary, diagnostics)."""


class CompiledKernel(LanguageKernel):
    """Subclasses set `source_name`, `toolchain`, and implement `wrap` and `build`."""

    source_name: ClassVar[str] = "main.c"
    toolchain: ClassVar[tuple[str, ...]] = ()  # executables that must exist (first missing is reported)
    install_hint: ClassVar[str] = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.build_root = scratch_dir(self.language_info["name"])
        self.cell_no = 0
        self.origin: list[int | None] | None = None
        self.source_file = self.source_name

    # -- to override ------------------------------------------------------------------------
    def wrap(self, code: str) -> str | Program:
        """The program for a cell: the cell itself, or the cell wrapped into an entry point
        (a `Program`, which maps its lines back to the cell's for diagnostics)."""
        return code

    def source_for(self, program: str) -> str:
        """The file name the program must be saved under (Java: the public class name)."""
        return self.source_name

    def build(self, src: Path, workdir: Path) -> list[str]:
        """Compile `src` inside `workdir`; return the argv that runs the program."""
        raise NotImplementedError

    def child_env(self) -> dict[str, str]:
        return dict(os.environ)

    # -- machinery ----------------------------------------------------------------------------
    def missing_toolchain(self) -> str | None:
        for tool in self.toolchain:
            if not shutil.which(tool, path=self.child_env().get("PATH")):
                return tool
        return None

    def compile(self, argv: list[str], workdir: Path) -> None:
        """Run one toolchain step; raise CompileError with its diagnostics when it fails."""
        # no preexec_fn: it would force a fork of the whole kernel; the compiler is short-lived
        # and, as we run inside do_execute, SIGINT is not ignored (exec resets it to default)
        proc = subprocess.run(argv, cwd=workdir, env=self.child_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
        # diagnostics name the file relative to the cell's build directory, not our temp path
        text = proc.stdout.decode("utf-8", "replace").replace(f"{workdir}/", "")
        text = map_lines(text, self.source_file, self.origin)
        if proc.returncode != 0:
            lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("# ")]
            summary = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "")
            raise CompileError(summary.strip() or f"{argv[0]} exited with {proc.returncode}", text)
        if text.strip():  # warnings
            self.stream("stderr", text)

    def run_cell(self, code: str) -> dict[str, Any]:
        missing = self.missing_toolchain()
        if missing:
            return self.fail("ToolchainNotFound", f"{missing} is not installed. {self.install_hint}".strip())
        self.cell_no += 1
        workdir = self.build_root / f"cell{self.cell_no}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        wrapped = self.wrap(code)
        program = wrapped.text if isinstance(wrapped, Program) else wrapped
        self.origin = wrapped.origin if isinstance(wrapped, Program) else None
        src = workdir / self.source_for(program)
        self.source_file = src.name
        src.write_text(program)
        try:
            argv = self.build(src, workdir)
        except CompileError as exc:
            summary, diagnostics = exc.args
            return self.fail("CompileError", summary, diagnostics.rstrip("\n").splitlines())
        finally:
            self.cell_no_cleanup(workdir)
        rc = self.run_program(argv)
        if rc == 0:
            return self.ok()
        if rc < 0:
            name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
            return self.fail("ProgramKilled", f"the program was killed by {name}")
        return self.fail("ExitCode", f"the program exited with code {rc}")

    def cell_no_cleanup(self, workdir: Path) -> None:
        """Keep only the current and the previous cell's build directory."""
        old = self.build_root / f"cell{self.cell_no - 2}"
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)

    def run_program(self, argv: list[str]) -> int:
        """Run the program in its own session, streaming output and answering stdin reads."""
        prefix = pdeathsig_argv()
        if not prefix:
            load_libc()
        proc = subprocess.Popen([*prefix, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.child_env(), cwd=os.getcwd(),
                                preexec_fn=None if prefix else default_sigint,
                                start_new_session=True)
        assert proc.stdin and proc.stdout and proc.stderr
        decoders = {proc.stdout.fileno(): ("stdout", codecs.getincrementaldecoder("utf-8")("replace")),
                    proc.stderr.fileno(): ("stderr", codecs.getincrementaldecoder("utf-8")("replace"))}
        sel = selectors.DefaultSelector()
        for fd in decoders:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        stdin_open = True
        watch = StdinWatch(proc.pid)

        def pump(timeout: float | None) -> bool:
            """Forward what is readable now; False when nothing was."""
            got = False
            for key, _ in sel.select(timeout):
                name, dec = decoders[key.fd]
                try:
                    data = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                got = True
                if data:
                    self.stream(name, dec.decode(data))
                else:
                    self.stream(name, dec.decode(b"", final=True))
                    sel.unregister(key.fd)
            return got

        try:
            while sel.get_map():
                if pump(POLL_INTERVAL):
                    continue
                if stdin_open and proc.poll() is None and watch.waiting():
                    while pump(0):  # the prompt text must reach the client before the request
                        pass
                    stdin_open = self.feed_stdin(proc)
            return proc.wait()
        except KeyboardInterrupt:
            self.stop(proc)
            while sel.get_map() and pump(0.2):
                pass
            raise
        finally:
            sel.close()
            for f in (proc.stdin, proc.stdout, proc.stderr):
                try:
                    f.close()
                except OSError:
                    pass
            if proc.poll() is None:
                self.stop(proc)

    def feed_stdin(self, proc: subprocess.Popen) -> bool:
        """Ask the front-end for one line; close stdin (EOF) when it cannot answer."""
        from ipykernel.kernelbase import StdinNotImplementedError  # type: ignore[attr-defined]

        assert proc.stdin
        try:
            line = self.raw_input("")
        except (StdinNotImplementedError, EOFError):
            proc.stdin.close()
            return False
        try:
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
        except BrokenPipeError:
            return False
        return True

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        """SIGINT to the program's process group, SIGKILL if it is still there after a grace period."""
        for sig, wait in ((signal.SIGINT, KILL_GRACE), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    return
                time.sleep(0.01)

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        shutil.rmtree(self.build_root, ignore_errors=True)
        return {"status": "ok", "restart": restart}
