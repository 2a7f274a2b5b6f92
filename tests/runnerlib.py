"""Start and stop real runner processes for tests (`python -m ai.backend.kernel ...`)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import msgpack
import zmq
import zmq.asyncio

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunnerProcess:
    """One runner subprocess with its own ports and dirs; `stop()` checks it exits in time."""

    def __init__(self, lang: str = "python", dirs: dict[str, Path] | None = None, *,
                 extra_args: list[str] | None = None, runtime_path: str | None = None,
                 env: dict[str, str] | None = None, port_flags: bool = True,
                 debug: bool = True) -> None:
        self.lang = lang
        self.dirs = dirs or {}
        self.extra_args = extra_args or []
        self.runtime_path = runtime_path
        self.env = env
        self.port_flags = port_flags
        self.debug = debug
        self.replin_port = free_port()
        self.replout_port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.log_path = self.dirs["work"].parent / f"runner-{self.replin_port}.log"

    @property
    def argv(self) -> list[str]:
        argv = [
            sys.executable, "-m", "ai.backend.kernel", *(["--debug"] if self.debug else []),
            *(["--replin-port", str(self.replin_port), "--replout-port", str(self.replout_port)] if self.port_flags else []),
            "--bind-ip", "127.0.0.1",
            "--work-dir", str(self.dirs["work"]), "--config-dir", str(self.dirs["config"]),
            "--runtime-dir", str(self.dirs["runtime"]),
            "--user-input-socket", str(self.dirs["runtime"] / "user-input.sock"),
            "--service-defs-dir", str(self.dirs["config"] / "service-defs"),
            "--ssh-key-dir", str(self.dirs["runtime"] / "dropbear"),
            "--intrinsic-bind-ip", "127.0.0.1",
            *self.extra_args, self.lang,
        ]
        if self.runtime_path:
            argv.append(self.runtime_path)
        return argv

    def _isolate_intrinsic_ports(self) -> None:
        """Intrinsic services (sshd, ttyd) get free ports too: tests never use fixed ports."""
        path = self.dirs["config"] / "intrinsic-ports.json"
        ports = json.loads(path.read_text()) if path.is_file() else {}
        for name in ("sshd", "ttyd"):
            ports.setdefault(name, free_port())
        path.write_text(json.dumps(ports))
        self.intrinsic_ports = ports

    async def start(self) -> None:
        self._isolate_intrinsic_ports()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.update(self.env or {})
        self.log_file = open(self.log_path, "wb")
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, cwd=str(REPO), env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=self.log_file, stderr=asyncio.subprocess.STDOUT,
        )
        await self.wait_status(timeout=20)
        if "--gateway-port" in self.extra_args:  # the gateway starts after the agent sockets answer
            port = int(self.extra_args[self.extra_args.index("--gateway-port") + 1])
            if port:
                await self.wait_gateway(port, timeout=30)

    async def run_to_exit(self, timeout: float = 30.0) -> tuple[int, str]:
        """Run the runner in the foreground until it exits by itself (a start that must fail):
        its exit status and its output (stdout and stderr together)."""
        self._isolate_intrinsic_ports()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        env.update(self.env or {})
        proc = await asyncio.create_subprocess_exec(
            *self.argv, cwd=str(REPO), env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode is not None
        return proc.returncode, out.decode(errors="replace")

    async def wait_gateway(self, port: int, timeout: float) -> None:
        """Wait until the gateway accepts connections (or the runner has exited)."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    if self.proc is not None and self.proc.returncode is not None:
                        return  # a runner that could not start its gateway: the test looks at why
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                return

    async def wait_status(self, timeout: float) -> dict:
        """Send `status` on raw sockets until the runner answers (its readiness)."""
        ctx = zmq.asyncio.Context()
        push, pull = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
        push.linger = pull.linger = 0
        push.connect(f"tcp://127.0.0.1:{self.replin_port}")
        pull.connect(f"tcp://127.0.0.1:{self.replout_port}")
        try:
            await push.send_multipart([b"status", b""])
            async with asyncio.timeout(timeout):
                while True:
                    op, payload = await pull.recv_multipart()
                    if op == b"status":
                        return msgpack.unpackb(payload)
        finally:
            push.close()
            pull.close()
            ctx.term()

    async def wait_subsystems(self, timeout: float = 30.0) -> None:
        """Until batch and the services are up (the runner builds them once the main kernel is
        ready): a memory figure taken before includes their imports."""
        async with asyncio.timeout(timeout):
            while "batch and services are up" not in self.log():
                await asyncio.sleep(0.05)

    def log(self) -> str:
        if not self.log_file.closed:
            self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
                raise AssertionError(f"runner did not exit within {timeout} s after {sig}:\n{self.log()}")
        self.log_file.close()
        return self.proc.returncode
