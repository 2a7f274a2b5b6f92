"""Network defaults: a developer machine gets no listener beyond loopback unless asked; inside an
agent's container (its config dir holds the agent's `resource.txt`) the original's behaviour stays."""
from __future__ import annotations

import asyncio
import ipaddress
import os
from pathlib import Path

import psutil
import pytest

from ai.backend.kernel.app import RunnerApp
from ai.backend.kernel.services.manager import ServiceManager
from tests.test_services import FakeAgent
from tests.runnerlib import RunnerProcess


class QuickstartRunner(RunnerProcess):
    """The README's first command: no bind flags, only ports and dirs (ports so tests never clash)."""

    @property
    def argv(self) -> list[str]:
        argv = super().argv
        for flag in ("--bind-ip", "--intrinsic-bind-ip"):
            i = argv.index(flag)
            del argv[i:i + 2]
        return argv


def _listening(pid: int) -> set[tuple[str, int]]:
    """Every TCP listening address of a process tree (the runner, its kernels and services)."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    result = set()
    for proc in procs:
        try:
            conns = proc.net_connections(kind="tcp")
        except psutil.Error:
            continue
        result |= {(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}
    return result


async def test_quickstart_listens_on_loopback_only(runner_dirs: dict[str, Path]) -> None:
    env = {k: "" for k in ("KRUNNER_BIND_IP", "KRUNNER_INTRINSIC_BIND_IP") if k in os.environ}
    proc = QuickstartRunner(lang="python", dirs=runner_dirs, env=env)
    await proc.start()
    try:
        assert proc.proc is not None
        ports = {proc.replin_port, proc.replout_port, *proc.intrinsic_ports.values()}
        deadline = asyncio.get_running_loop().time() + 20
        # the agent ports at once; the web terminal (terminado fallback) once services are up
        while True:
            listening = _listening(proc.proc.pid)
            seen = {port for _, port in listening}
            if {proc.replin_port, proc.replout_port, proc.intrinsic_ports["ttyd"]} <= seen:
                break
            assert asyncio.get_running_loop().time() < deadline, f"not listening yet: {listening}\n{proc.log()}"
            await asyncio.sleep(0.2)
        assert listening, "the runner listens on nothing"
        for ip, port in listening:
            assert ipaddress.ip_address(ip).is_loopback, f"{ip}:{port} is reachable from the network"
        assert {proc.replin_port, proc.replout_port} <= seen
        assert ports & seen
    finally:
        await proc.stop()


@pytest.mark.parametrize("agent_container", [False, True])
def test_defaults_follow_the_agent_container(tmp_path: Path, agent_container: bool,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KRUNNER_BIND_IP", raising=False)
    monkeypatch.delenv("KRUNNER_INTRINSIC_BIND_IP", raising=False)
    if agent_container:
        (tmp_path / "resource.txt").write_text("CID=abc\n")
    app = RunnerApp()
    app.parse_command_line(["--config-dir", str(tmp_path), "python"])
    expected = ("*", "0.0.0.0") if agent_container else ("127.0.0.1", "127.0.0.1")
    assert (app.bind_ip, intrinsic_bind_ip(app, tmp_path)) == expected


def test_explicit_bind_wins_over_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRUNNER_INTRINSIC_BIND_IP", "127.0.0.2")
    app = RunnerApp()
    app.parse_command_line(["--config-dir", str(tmp_path), "--bind-ip", "127.0.0.3", "python"])
    assert (app.bind_ip, intrinsic_bind_ip(app, tmp_path)) == ("127.0.0.3", "127.0.0.2")


def intrinsic_bind_ip(app: RunnerApp, tmp_path: Path) -> str:
    """The address the runner's ServiceManager (configured by `app`) gives sshd and ttyd."""
    agent = FakeAgent(tmp_path)
    manager = ServiceManager(agent, parent=app, lang="python", work_dir=agent.work_dir,
                             config_dir=Path(app.config_dir), runtime_path=agent.runtime_path,
                             child_env=agent.child_env, intrinsic_ports={})
    return manager.bind_ip
