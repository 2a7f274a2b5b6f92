"""Services through a real runner process, driven by the real agent client (tests/agentlib)."""
from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path


from tests.agentlib import AgentClient
from tests.runnerlib import RunnerProcess, free_port
from tests import toolcheck
from tests.toolcheck import require_tool
from tests.test_services import _read_terminal_until, live_group_members, port_open, ssh_run, ssh_user, wait_port

__all__ = ["ssh_user"]  # fixture re-exported for pytest

PY = sys.executable


def write_defs(defs_dir: Path, defs: dict[str, object]) -> None:
    defs_dir.mkdir(parents=True, exist_ok=True)
    for name, body in defs.items():
        (defs_dir / f"{name}.json").write_text(body if isinstance(body, str) else json.dumps(body))


def runner_env(tmp: Path, intrinsic: str = "") -> dict[str, str]:
    return {
        "KRUNNER_INTRINSIC_SERVICES": intrinsic,
        "KRUNNER_INTRINSIC_BIND_IP": "127.0.0.1",
        "KRUNNER_SSH_KEY_DIR": str(tmp / "dropbear"),
    }


def received(agent: AgentClient, kind: str) -> list[dict]:
    return [json.loads(payload) for t, payload, _ in agent.received if t == kind]


async def test_services_through_the_agent(runner_dirs: dict[str, Path], tmp_path: Path, agent_client_factory) -> None:
    write_defs(runner_dirs["config"] / "service-defs", {
        "web": {"command": [PY, "-m", "http.server", "{ports[0]}", "--bind", "127.0.0.1"],
                "url_template": "http://{host}:{port}/", "allowed_arguments": ["--directory"]},
        "dies": {"command": "echo 'missing config file' >&2; exit 3"},
        "broken": '{"command": ["x"], "unknown": true}',
        "alsobroken": "{not json",
    })
    runner = RunnerProcess("python", runner_dirs, env=runner_env(tmp_path))
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        apps = await agent.wait_ready()
        assert sorted(a["name"] for a in apps["data"]) == ["dies", "web"]
        port = free_port()
        payload = AgentClient.service_payload("web", [port], "http")
        assert await agent.start_service(payload) == {"status": "started"}
        assert port_open(port)
        assert await agent.start_service(payload) == {"status": "running"}
        await agent.shutdown_service("web")
        deadline = time.monotonic() + 5
        while port_open(port):
            assert time.monotonic() < deadline, "port still open after shutdown-service"
            await asyncio.sleep(0.05)

        t0 = time.monotonic()
        result = await agent.start_service(AgentClient.service_payload("dies", [free_port()], "http"))
        assert time.monotonic() - t0 < 1.0
        assert result["status"] == "failed"
        assert "exited early (exit code 3)" in result["error"] and "missing config file" in result["error"]

        result = await agent.start_service(
            AgentClient.service_payload("web", [free_port()], "http", {"arguments": {"--bind": "0.0.0.0"}}))
        assert result["status"] == "failed" and "DisallowedArgument" in result["error"]

        # Model service with a health endpoint.
        model_dir = tmp_path / "model"
        model_dir.mkdir()
        (model_dir / "healthz").write_text("ok")
        mport = free_port()
        config = {"name": "llm", "model_path": str(model_dir), "service": {
            "start_command": [PY, "-m", "http.server", str(mport), "--bind", "127.0.0.1"],
            "shell": "/bin/bash", "pre_start_actions": [], "port": mport,
            "health_check": {"enable": True, "interval": 0.3, "path": "/healthz", "max_retries": 10,
                             "max_wait_time": 2.0, "expected_status_code": 200, "initial_delay": 60.0}},
            "metadata": {}}
        assert await agent.start_model_service(config) == {"status": "started"}
        deadline = time.monotonic() + 10
        while not received(agent, "model-service-status"):
            assert time.monotonic() < deadline, "no model-service-status frame"
            await asyncio.sleep(0.05)
        assert received(agent, "model-service-status")[0] == {"model_name": "llm", "is_healthy": True}
        apps = await agent.get_apps()
        assert f"llm-{mport}" in [a["name"] for a in apps["data"]]
    finally:
        await runner.stop()
    assert not port_open(mport)  # the runner's shutdown ended the model service
    log = runner.log_path.read_text(errors="replace")
    pgids = [int(m) for m in re.findall(r"service \S+ spawned \(pid (\d+)\)", log)]
    assert len(pgids) == 3  # web, dies, the model
    assert all(not live_group_members(pgid) for pgid in pgids)  # no service outlives the runner
    assert "broken.json" in log and "alsobroken.json" in log


async def test_slow_start_does_not_stall_the_runner(runner_dirs: dict[str, Path], tmp_path: Path, agent_client_factory) -> None:
    write_defs(runner_dirs["config"] / "service-defs", {
        "sleepy": {"command": [PY, "-c", "import time; time.sleep(60)"]},
    })
    runner = RunnerProcess("python", runner_dirs, env=runner_env(tmp_path), extra_args=["--service-launch-timeout", "3"])
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        await agent.wait_ready()
        start = asyncio.create_task(agent.start_service(AgentClient.service_payload("sleepy", [free_port()], "tcp")))
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        assert (await agent.status(timeout=5))["started_at"] > 0
        assert (await agent.get_apps())["data"] == [{"name": "sleepy"}]
        assert time.monotonic() - t0 < 1.0
        result = await start
        assert result == {"status": "failed", "error": "opening the service port timed out: sleepy"}
    finally:
        await runner.stop()


async def test_intrinsic_sshd_and_web_terminal(tmp_path: Path, ssh_user, agent_client_factory) -> None:
    from tornado.websocket import websocket_connect

    from ai.backend.kernel.services.intrinsic import Dropbear, find_binary

    require_tool("ssh")
    if Dropbear.find() is None:
        toolcheck.missing("dropbear", "no dropbear binary; .ci/install.d/50-services.sh")
    user, home = ssh_user
    dirs = {"work": home, "config": tmp_path / "config", "runtime": tmp_path / "runtime"}
    for d in ("config", "runtime"):
        dirs[d].mkdir()
    sshd_port, ttyd_port = free_port(), free_port()
    (dirs["config"] / "intrinsic-ports.json").write_text(json.dumps({"sshd": sshd_port, "ttyd": ttyd_port}))
    runner = RunnerProcess("python", dirs, env=runner_env(tmp_path, "sshd,ttyd"))
    t0 = time.monotonic()
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        await agent.wait_ready()
        ready = time.monotonic() - t0
        await wait_port(sshd_port)
        await wait_port(ttyd_port)
        out = await ssh_run(user, home, sshd_port, tmp_path / "key", "echo logged-in-as-$(id -un)")
        assert out.strip() == f"logged-in-as-{user}"
        assert await agent.start_service(AgentClient.service_payload("sshd", [sshd_port], "tcp")) == {"status": "running"}
        if not find_binary("ttyd"):
            ws = await websocket_connect(f"ws://127.0.0.1:{ttyd_port}/websocket")
            ws.write_message(json.dumps(["stdin", "echo hi\r"]))
            await _read_terminal_until(
                ws, lambda m: "".join(p[1] for p in [json.loads(m)] if p[0] == "stdout"), r"(?:^|[\r\n])hi\r?\n")
            ws.close()
        assert await agent.start_service(AgentClient.service_payload("ttyd", [ttyd_port], "http")) == {"status": "running"}
    finally:
        await runner.stop()
    assert not port_open(sshd_port) and not port_open(ttyd_port)
    assert ready < 10, ready
