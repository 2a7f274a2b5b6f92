"""One service process: spawn in its own process group, wait for its port, terminate the group.

The port wait races the process's exit, so a service that dies at once is reported at once (the
original only noticed at the end of its 30 s timeout). Every service starts through
`procfacts.pdeathsig_argv()`, so it dies with the runner even when the runner is SIGKILLed
(docs/services.md#dying-with-the-runner).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import os
import shutil
import signal
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..procfacts import pdeathsig_argv, signal_group
from .reaper import watch_session

log = logging.getLogger(__name__)
out_log = logging.getLogger(__name__ + ".output")

_TAIL_BYTES = 4096


class ServiceExited(Exception):
    """The service process ended before its port opened."""

    def __init__(self, name: str, returncode: int, tail: str) -> None:
        self.name, self.returncode, self.tail = name, returncode, tail
        msg = f"the service process exited early (exit code {returncode}): {name}"
        if tail:
            msg += f": {tail}"
        super().__init__(msg)


def resolve_executable(name: str, path: str | None, cwd: str | Path | None = None) -> str:
    """The file exec would run for `name` with the child's PATH and working directory, or the
    error exec would give.

    Why: with `setpriv` in front, a failed exec happens inside setpriv and would only show as an
    early exit; checking first keeps the "not found" / "not executable" replies of docs/services.md.
    """
    def here(p: str) -> str:
        return os.path.join(cwd, p) if cwd is not None else p

    if "/" in name:
        if not os.path.exists(here(name)):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        if os.path.isdir(here(name)) or not os.access(here(name), os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
        return name
    dirs = [here(d or ".") for d in (os.defpath if path is None else path).split(os.pathsep)]
    found = shutil.which(name, path=os.pathsep.join(dirs))
    if found is None:
        if any(os.path.isfile(os.path.join(d, name)) for d in dirs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
    return found


def dying_with_runner(argv: Sequence[str], env: Mapping[str, str], cwd: str | Path | None = None) -> list[str]:
    """`argv` behind the pdeathsig prefix (when setpriv is there), its program checked first.

    The prefix ties the child to the thread that forks it: services are forked by the event loop's
    thread, the runner's main thread, which lives as long as the runner.
    """
    prefix = pdeathsig_argv()
    if not prefix:
        return list(argv)
    if threading.current_thread() is not threading.main_thread():
        log.warning("a service is started from thread %s: it dies when that thread ends",
                    threading.current_thread().name)
    resolve_executable(argv[0], env.get("PATH"), cwd)  # setpriv looks it up the same way, in the same PATH
    return [*prefix, *argv]


class ServiceProcess:
    """A spawned service; stdout is inherited (container log), stderr is logged and its tail kept."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.stopping = False  # set when we end it on purpose (shutdown-service, timeout)
        self._tail: collections.deque[bytes] = collections.deque()
        self._tail_len = 0
        self._stderr_task = asyncio.create_task(self._pump_stderr(), name=f"service-{name}-stderr")
        self.exited = asyncio.create_task(self._wait(), name=f"service-{name}-wait")

    @classmethod
    async def spawn(
        cls, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: str | Path,
    ) -> ServiceProcess:
        """Start `argv`; raises FileNotFoundError/PermissionError like the original expects."""
        proc = await asyncio.create_subprocess_exec(
            *dying_with_runner(argv, env, cwd), stdin=asyncio.subprocess.DEVNULL, stdout=None, stderr=asyncio.subprocess.PIPE,
            env=dict(env), cwd=str(cwd), start_new_session=True,
        )
        watch_session(proc.pid)
        log.info("service %s spawned (pid %d): %s", name, proc.pid, list(argv))
        return cls(name, proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        while True:
            line = await self.proc.stderr.readline()
            if not line:
                return
            self._tail.append(line)
            self._tail_len += len(line)
            while self._tail_len > _TAIL_BYTES and len(self._tail) > 1:
                self._tail_len -= len(self._tail.popleft())
            out_log.info("[%s] %s", self.name, line.decode("utf-8", "replace").rstrip())

    async def _wait(self) -> int:
        rc = await self.proc.wait()
        # Let the stderr pipe drain (bounded: grandchildren may keep it open).
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_task), 0.2)
        log.info("service %s (pid %d) exited with %d", self.name, self.proc.pid, rc)
        return rc

    def stderr_tail(self, lines: int = 3, limit: int = 400) -> str:
        text = b"".join(self._tail).decode("utf-8", "replace").strip()
        tail = " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())
        return tail[-limit:]

    async def wait_port(self, port: int, timeout: float, host: str = "127.0.0.1") -> None:
        """Return once `host:port` accepts; ServiceExited if the process dies first, TimeoutError after `timeout`."""
        async def probe() -> None:
            while True:
                try:
                    _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10.0)
                except (OSError, asyncio.TimeoutError):
                    await asyncio.sleep(0.1)
                    continue
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return

        prober = asyncio.create_task(probe())
        try:
            done, _ = await asyncio.wait({prober, self.exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            prober.cancel()
        if prober in done and not prober.cancelled() and prober.exception() is None:
            return
        if self.exited.done():
            raise ServiceExited(self.name, self.exited.result(), self.stderr_tail())
        raise asyncio.TimeoutError()

    def _signal_group(self, sig: int) -> None:
        signal_group(self.proc.pid, sig)

    async def terminate(self, grace: float = 2.0, kill_wait: float = 0.5) -> None:
        """SIGTERM the whole process group, SIGKILL it after `grace` seconds."""
        if self.alive:
            self._signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), grace)
            except asyncio.TimeoutError:
                log.warning("service %s did not stop in %.1f s; killing it", self.name, grace)
        # Members of the group may outlive the leader: kill whatever is left.
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.exited), kill_wait)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_task), 0.1)
        self._stderr_task.cancel()
