"""ServiceManager against real processes and ports; the fake agent link only collects frames."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ai.backend.kernel.agentlink import AgentLink
from ai.backend.kernel.services.manager import ServiceManager
from ai.backend.kernel.services.actions import ActionContext, run_actions
from ai.backend.kernel.services.definitions import (
    build_argv,
    build_env,
    interpolate,
    load_directory,
    parse_definition,
)
from ai.backend.kernel.services.errors import DisallowedArgument, DisallowedEnvironment, InvalidServiceDefinition
from tests.runnerlib import free_port
from tests import toolcheck
from tests.toolcheck import require_tool

PY = sys.executable


class FakeAgent(AgentLink):
    """The agent link ServiceManager talks to (frames go to a queue), plus the plain values the
    runner gives it; `make_manager` builds the manager from them."""

    def __init__(self, tmp: Path, **app: Any) -> None:
        self.lang = "python"
        self.runtime_path = PY
        self.work_dir = tmp / "work"
        self.config_dir = tmp / "config"
        self.defs_dir = tmp / "defs"
        for d in (self.work_dir, self.config_dir, self.defs_dir):
            d.mkdir(exist_ok=True)
        options = {
            "defs_dir": str(self.defs_dir),
            "launch_timeout": 10.0,
            "intrinsic_services": [],
            "bind_ip": "127.0.0.1",
            "ssh_key_dir": str(tmp / "dropbear"),
        }
        options.update(app)
        self.options = options
        self.child_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.work_dir), "LANG": "C.UTF-8"}
        self.intrinsic_ports: dict[str, int] = {}
        self.frames: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def send(self, msg_type: str, payload: Any = b"") -> None:
        if isinstance(payload, (bytes, str)) and payload:
            payload = json.loads(payload)
        self.frames.put_nowait((msg_type, payload))

    async def next_user_input(self) -> str:
        raise AssertionError("services never ask for user input")

    async def wait_next_queued_op(self, timeout: float) -> str | None:
        raise AssertionError("services never look at the task queue")

    async def next_frame(self, timeout: float = 10.0) -> tuple[str, Any]:
        return await asyncio.wait_for(self.frames.get(), timeout)

    def write_def(self, name: str, body: Any) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        (self.defs_dir / f"{name}.json").write_text(text)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def live_group_members(pgid: int) -> list[int]:
    """Pids in process group `pgid` that are not zombies (this machine's init reaps orphans late)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


async def group_gone(pgid: int, timeout: float = 1.0) -> bool:
    """SIGKILLed members take a moment to disappear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not live_group_members(pgid):
            return True
        await asyncio.sleep(0.02)
    return False


def http_server_def(**extra: Any) -> dict[str, Any]:
    return {"command": [PY, "-m", "http.server", "{ports[0]}", "--bind", "127.0.0.1"], **extra}


def payload(name: str, port: int, **kw: Any) -> str:
    return json.dumps({"name": name, "port": port, "ports": [port], "protocol": "http", "options": {}, **kw})


@pytest.fixture
async def fake(tmp_path: Path):
    runner = FakeAgent(tmp_path)
    runner.manager = None
    yield runner
    if runner.manager is not None:
        await runner.manager.shutdown()


async def make_manager(runner: FakeAgent) -> ServiceManager:
    mgr = ServiceManager(runner, lang=runner.lang, work_dir=runner.work_dir, config_dir=runner.config_dir,
                         runtime_path=runner.runtime_path, child_env=runner.child_env,
                         intrinsic_ports=runner.intrinsic_ports, **runner.options)
    runner.manager = mgr
    await mgr.start()
    return mgr


# ---------------------------------------------------------------- definitions, interpolation
def test_interpolation_rules() -> None:
    variables = {"ports": [8080, 8081], "runtime_path": "/py", "ref": {"out": "x"}}
    assert interpolate(
        ["{ports[0]}", "${{ ports[1] }}", "{ runtime_path }", "$HOME", "${HOME}", "a{ref[out]}b", "plain"],
        variables,
    ) == ["8080", "8081", "/py", "$HOME", "${HOME}", "axb", "plain"]
    with pytest.raises(InvalidServiceDefinition):
        interpolate(["{undefined}"], variables)
    with pytest.raises(InvalidServiceDefinition):
        interpolate(['{"a": 1}'], variables)


def test_argument_and_env_assembly() -> None:
    defn = parse_definition("svc", {
        "command": ["run"], "allowed_arguments": ["--level"], "allowed_envs": ["MODE"],
        "default_arguments": {"--flag": None, "--port": "{ports[0]}", "--many": ["a", "b"]},
        "env": {"SVC_PORT": "{ports[0]}"},
    })
    variables = {"ports": [7000], "runtime_path": PY}
    argv = build_argv(defn, variables, {"arguments": {"--level": "3"}})
    assert argv == ["run", "--flag", "--port", "7000", "--many", "a", "b", "--level", "3"]
    with pytest.raises(DisallowedArgument):
        build_argv(defn, variables, {"arguments": {"--evil": "1"}})
    assert build_env(defn, variables, {"envs": {"MODE": "x"}}, frozen=["PATH"]) == {"MODE": "x", "SVC_PORT": "7000"}
    with pytest.raises(DisallowedEnvironment):
        build_env(defn, variables, {"envs": {"OTHER": "x"}}, frozen=["PATH"])
    pathdef = parse_definition("p", {"command": ["x"], "allowed_envs": ["PATH"]})
    with pytest.raises(DisallowedEnvironment):
        build_env(pathdef, variables, {"envs": {"PATH": "/evil"}}, frozen=["PATH"])
    shell = parse_definition("s", {"command": "echo $HOME {ports[0]}"})
    argv = build_argv(shell, variables, {})
    assert argv[1:] == ["-c", "echo $HOME 7000"] and argv[0].endswith("bash")
    split = parse_definition("s", {"command": "prog 'a b' {ports[0]}", "shell": None})
    assert build_argv(split, variables, {}) == ["prog", "a b", "7000"]


def test_malformed_definitions_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text(json.dumps({"command": ["x"], "url_template": "http://{host}:{port}/"}))
    bad = {
        "broken": "{not json",
        "unknown_key": json.dumps({"command": ["x"], "bogus": 1}),
        "no_command": json.dumps({"shell": "bash"}),
        "bad_type": json.dumps({"command": 42}),
        "bad_action": json.dumps({"command": ["x"], "prestart": [{"action": "format_disk", "args": {}}]}),
        "bad_action_args": json.dumps({"command": ["x"], "prestart": [{"action": "mkdir", "args": {"dir": "a"}}]}),
        "braces": json.dumps({"command": ["x", '{"json": 1}']}),
        "not_object": "[1, 2]",
    }
    for name, text in bad.items():
        (tmp_path / f"{name}.json").write_text(text)
    good, errors = load_directory(tmp_path)
    assert list(good) == ["good"]
    assert set(errors) == {f"{n}.json" for n in bad}
    assert "unknown keys" in errors["unknown_key.json"] and "JSON" in errors["broken.json"]
    assert good["good"].app_info() == {"name": "good", "url_template": "http://{host}:{port}/"}


def test_example_definitions_load() -> None:
    examples = Path(__file__).resolve().parents[1] / "examples" / "service-defs"
    good, errors = load_directory(examples)
    assert not errors and {"web", "notebook-lab", "shell-status", "manual"} <= set(good)


async def test_prestart_actions(tmp_path: Path) -> None:
    defn = parse_definition("svc", {"command": ["x"], "prestart": [
        {"action": "mkdir", "args": {"path": "sub/{ports[0]}"}},
        {"action": "write_file", "args": {"filename": "sub/{ports[0]}/f.txt", "body": ["one {ports[0]}"]}},
        {"action": "write_file", "args": {"filename": "sub/{ports[0]}/f.txt", "body": ["two"], "append": True, "mode": "600"}},
        {"action": "write_tempfile", "args": {"body": ["print(", "'{runtime_path}')"]}, "ref": "tmp"},
        {"action": "run_command", "args": {"command": ["cat", "{tmp}"], "echo": True}, "ref": "cat"},
        {"action": "log", "args": {"message": "ran {cat[out]}", "debug": True}},
    ]})
    variables: dict[str, Any] = {"ports": [5], "runtime_path": "/rt"}
    await run_actions(defn.prestart_actions, ActionContext(env=dict(os.environ), cwd=tmp_path), variables)
    target = tmp_path / "sub" / "5" / "f.txt"
    assert target.read_text() == "one 5\ntwo\n"  # append really appends
    assert target.stat().st_mode & 0o777 == 0o600
    assert Path(variables["tmp"]).read_text() == "print('/rt')" and variables["tmp"].endswith(".py")
    assert variables["cat"] == {"out": "print('/rt')", "err": ""}
    os.unlink(variables["tmp"])


# ---------------------------------------------------------------- start / running / shutdown
async def test_start_running_shutdown_and_get_apps(fake: FakeAgent) -> None:
    fake.write_def("web", http_server_def(url_template="http://{host}:{port}/", allowed_arguments=["--directory"]))
    fake.write_def("broken", "{oops")
    mgr = await make_manager(fake)
    await mgr.op_get_apps("")
    assert await fake.next_frame() == ("apps-result", {"status": "done", "data": [
        {"name": "web", "url_template": "http://{host}:{port}/", "allowed_arguments": ["--directory"]}]})
    await mgr.op_get_apps("nothing")
    assert await fake.next_frame() == ("apps-result", {"status": "done", "data": []})
    port = free_port()
    t0 = time.monotonic()
    await mgr.op_start_service(payload("web", port))
    assert await fake.next_frame() == ("service-result", {"status": "started"})
    assert port_open(port)
    await mgr.op_start_service(payload("web", port))
    assert await fake.next_frame() == ("service-result", {"status": "running"})
    pid = mgr.running["web"].pid
    await mgr.op_shutdown_service(json.dumps("web"))
    assert not port_open(port)
    assert "web" not in mgr.running
    assert await group_gone(pid)
    assert time.monotonic() - t0 < 8
    # And it can be started again afterwards.
    await mgr.op_start_service(payload("web", port))
    assert await fake.next_frame() == ("service-result", {"status": "started"})


async def test_early_exit_is_reported_at_once(fake: FakeAgent) -> None:
    fake.write_def("dies", {"command": [PY, "-c", "import sys; sys.exit('cannot start: bad config')"]})
    mgr = await make_manager(fake)
    t0 = time.monotonic()
    await mgr.op_start_service(payload("dies", free_port()))
    kind, result = await fake.next_frame()
    elapsed = time.monotonic() - t0
    assert kind == "service-result" and result["status"] == "failed"
    assert "exited early" in result["error"] and "exit code 1" in result["error"]
    assert "cannot start: bad config" in result["error"]
    assert elapsed < 1.0, elapsed


async def test_failure_messages(fake: FakeAgent) -> None:
    fake.write_def("web", http_server_def(allowed_arguments=["--directory"]))
    fake.write_def("missing", {"command": ["/nonexistent/program", "{ports[0]}"]})
    script = fake.work_dir / "noexec.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    fake.write_def("noexec", {"command": [str(script)]})
    fake.write_def("badref", {"command": ["x", "{nothing}"]})
    fake.write_def("nop", {"noop": True})
    mgr = await make_manager(fake)
    cases = {
        payload("web", free_port(), options={"arguments": {"--bind": "0.0.0.0"}}): "DisallowedArgument",
        payload("web", free_port(), options={"envs": {"X": "1"}}): "DisallowedEnvironment",
        payload("missing", free_port()): "the executable file is not found: /nonexistent/program",
        payload("noexec", free_port()): f"the target file is not executable: {script}",
        payload("badref", free_port()): "InvalidServiceDefinition",
        payload("unknown-svc", free_port()): "unsupported service: unknown-svc",
        payload("web", free_port(), protocol="pty"): "not implemented yet",
        "not json": "invalid start-service payload",
    }
    for request, expected in cases.items():
        await mgr.op_start_service(request)
        kind, result = await fake.next_frame()
        assert kind == "service-result" and result["status"] == "failed", (request, result)
        assert expected in result["error"], (request, result)
    await mgr.op_start_service(payload("anything", free_port(), protocol="preopen"))
    assert await fake.next_frame() == ("service-result", {"status": "started"})
    await mgr.op_start_service(payload("nop", free_port()))
    assert await fake.next_frame() == ("service-result", {"status": "started"})
    assert not mgr.running


async def test_program_relative_to_the_work_dir_starts(fake: FakeAgent) -> None:
    """A program named relative to the service's working directory is found there (the check
    before setpriv looks where exec will look, not in the runner's own cwd)."""
    script = fake.work_dir / "serve.sh"
    script.write_text(f"#!/bin/sh\nexec {PY} -m http.server \"$1\" --bind 127.0.0.1\n")
    script.chmod(0o755)
    fake.write_def("local", {"command": ["./serve.sh", "{ports[0]}"]})
    mgr = await make_manager(fake)
    port = free_port()
    await mgr.op_start_service(payload("local", port))
    assert await fake.next_frame() == ("service-result", {"status": "started"})
    assert port_open(port)


async def test_port_timeout_and_slow_start_does_not_block_others(tmp_path: Path) -> None:
    runner = FakeAgent(tmp_path, launch_timeout=1.5)
    runner.write_def("silent", {"command": [PY, "-c", "import time; time.sleep(60)"]})
    runner.write_def("web", http_server_def())
    mgr = await make_manager(runner)
    try:
        slow = asyncio.create_task(mgr.op_start_service(payload("silent", free_port())))
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        await mgr.op_start_service(payload("web", free_port()))
        assert await runner.next_frame() == ("service-result", {"status": "started"})
        assert time.monotonic() - t0 < 1.4  # not serialised behind the slow one
        await slow
        kind, result = await runner.next_frame()
        assert result == {"status": "failed", "error": "opening the service port timed out: silent"}
        assert "silent" not in mgr.running
    finally:
        await mgr.shutdown()


async def test_shutdown_service_during_start(fake: FakeAgent) -> None:
    fake.write_def("silent", {"command": [PY, "-c", "import time; time.sleep(60)"]})
    mgr = await make_manager(fake)
    start = asyncio.create_task(mgr.op_start_service(payload("silent", free_port())))
    await asyncio.sleep(0.3)
    await mgr.op_shutdown_service('"silent"')
    await asyncio.wait_for(start, 3)
    kind, result = await fake.next_frame()
    assert result == {"status": "failed", "error": "the service was shut down while starting: silent"}


async def test_runner_shutdown_kills_every_service(fake: FakeAgent) -> None:
    # One service ignores SIGTERM and leaves a grandchild in its process group.
    stubborn = (
        "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "import http.server as h; h.test(HandlerClass=h.SimpleHTTPRequestHandler, port=int(sys.argv[1]), bind='127.0.0.1')"
    )
    fake.write_def("stubborn", {"command": [PY, "-c", stubborn, "{ports[0]}"]})
    fake.write_def("web", http_server_def())
    mgr = await make_manager(fake)
    for name in ("stubborn", "web"):
        await mgr.op_start_service(payload(name, free_port()))
        assert (await fake.next_frame())[1] == {"status": "started"}
    pgids = [p.pid for p in mgr.running.values()]
    t0 = time.monotonic()
    await mgr.shutdown()
    assert time.monotonic() - t0 < 2.4
    for pgid in pgids:
        assert await group_gone(pgid)
    fake.manager = None


async def test_model_service_health(fake: FakeAgent, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "health").write_text("ok")
    port = free_port()
    mgr = await make_manager(fake)
    config = {
        "name": "mymodel", "model_path": str(model_dir),
        "service": {
            "start_command": f"exec {PY} -m http.server {port} --bind 127.0.0.1",
            "port": port,
            "health_check": {"enable": True, "interval": 0.2, "path": "/health", "max_retries": 2,
                             "max_wait_time": 1.0, "expected_status_code": 200},
        },
        "metadata": {},
    }
    await mgr.op_start_model_service(json.dumps(config))
    assert await fake.next_frame() == ("model-service-result", {"status": "started"})
    assert await fake.next_frame() == ("model-service-status", {"model_name": "mymodel", "is_healthy": True})
    await mgr.op_get_apps("")
    assert (await fake.next_frame())[1]["data"] == [{"name": f"mymodel-{port}"}]
    # The model dies: after max_retries failed probes it is reported unhealthy, once.
    os.killpg(mgr.running[f"mymodel-{port}"].pid, signal.SIGKILL)
    assert await fake.next_frame(5) == ("model-service-status", {"model_name": "mymodel", "is_healthy": False})
    with pytest.raises(asyncio.TimeoutError):
        await fake.next_frame(0.8)


async def test_model_service_without_health_check_and_failures(fake: FakeAgent, tmp_path: Path) -> None:
    mgr = await make_manager(fake)
    port = free_port()
    config = {"name": "m2", "model_path": str(tmp_path), "service": {
        "start_command": [PY, "-m", "http.server", str(port), "--bind", "127.0.0.1"], "port": port}}
    await mgr.op_start_model_service(json.dumps(config))
    assert await fake.next_frame() == ("model-service-result", {"status": "started"})
    assert await fake.next_frame() == ("model-service-status", {"model_name": "m2", "is_healthy": True})
    await mgr.op_start_model_service(json.dumps({"name": "m3", "model_path": str(tmp_path)}))
    kind, result = await fake.next_frame()
    assert kind == "model-service-result" and result["status"] == "failed"
    config = {"name": "m4", "model_path": str(tmp_path / "nope"), "service": {"start_command": "true", "port": free_port()}}
    await mgr.op_start_model_service(json.dumps(config))
    # the reply carries the underlying error, not only that the start failed
    assert await fake.next_frame() == ("model-service-result", {
        "status": "failed",
        "error": f"service failed to start: the model directory does not exist: {tmp_path / 'nope'}"})


async def test_legacy_python_service(fake: FakeAgent) -> None:
    """`spectravis` is the built-in that needs nothing installed: http.server on 8000 in ~/spectravis."""
    mgr = await make_manager(fake)
    await mgr.op_start_service(payload("sftp", free_port()))
    kind, result = await fake.next_frame()
    assert result["status"] == "failed" and "sftpserver" in result["error"]  # not installed here
    await mgr.op_start_service(payload("ipython", free_port(), protocol="pty"))
    assert (await fake.next_frame())[1] == {"status": "failed", "error": "not implemented yet"}


# ---------------------------------------------------------------- intrinsic: web terminal, sshd
async def _read_terminal_until(ws: Any, decode: Any, pattern: str, timeout: float = 10.0) -> str:
    import re

    seen = ""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, seen, re.M):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {pattern!r} in terminal output: {seen!r}"
        msg = await asyncio.wait_for(ws.read_message(), remaining)
        assert msg is not None, f"websocket closed; output so far: {seen!r}"
        seen += decode(msg)
    return seen


async def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(port):
        assert time.monotonic() < deadline, f"port {port} never opened"
        await asyncio.sleep(0.05)


async def test_web_terminal_fallback(tmp_path: Path) -> None:
    from tornado.websocket import websocket_connect

    from ai.backend.kernel.services.intrinsic import find_binary

    if find_binary("ttyd"):
        pytest.skip("a ttyd binary is installed: the terminado fallback is not used")
    runner = FakeAgent(tmp_path, intrinsic_services=["ttyd"])
    port = free_port()
    runner.intrinsic_ports = {"ttyd": port}
    mgr = await make_manager(runner)
    try:
        await wait_port(port)
        # terminado's dialect
        ws = await websocket_connect(f"ws://127.0.0.1:{port}/websocket")
        ws.write_message(json.dumps(["set_size", 24, 80]))
        ws.write_message(json.dumps(["stdin", "echo hi\r"]))
        out = await _read_terminal_until(
            ws, lambda m: "".join(p[1] for p in [json.loads(m)] if p[0] == "stdout"), r"(?:^|[\r\n])hi\r?\n")
        assert "hi" in out
        ws.close()
        # ttyd's dialect, as ttyd's own clients speak it
        ws = await websocket_connect(f"ws://127.0.0.1:{port}/ws", subprotocols=["tty"])
        assert ws.selected_subprotocol == "tty"
        ws.write_message(json.dumps({"AuthToken": "", "columns": 80, "rows": 24}).encode(), binary=True)
        ws.write_message(b"0echo $((40+2))\r", binary=True)
        await _read_terminal_until(ws, lambda m: m[1:].decode() if m[:1] == b"0" else "", r"(?:^|[\r\n])42\r?\n")
        ws.close()
        # Start again -> running; shutdown -> port closed.
        await mgr.op_start_service(payload("ttyd", port))
        assert await runner.next_frame() == ("service-result", {"status": "running"})
        await mgr.op_shutdown_service('"ttyd"')
        assert not port_open(port)
    finally:
        await mgr.shutdown()


@pytest.fixture
def ssh_user(tmp_path: Path):
    """A throwaway login user whose home is a work dir (dropbear finds keys via the passwd entry)."""
    import shutil
    import subprocess
    import tempfile
    import uuid

    if os.geteuid() != 0:
        pytest.skip("needs root to create a login user")
    require_tool("useradd")
    parent = Path(tempfile.mkdtemp(prefix="krsvc-"))
    parent.chmod(0o755)
    home = parent / "work"
    home.mkdir(mode=0o755)
    name = "krsvc" + uuid.uuid4().hex[:8]
    subprocess.run(["useradd", "-M", "-d", str(home), "-s", "/bin/sh", name], check=True)
    try:
        yield name, home
    finally:
        subprocess.run(["userdel", name], check=False)
        shutil.rmtree(parent, ignore_errors=True)


async def ssh_run(user: str, home: Path, port: int, key_copy: Path, command: str) -> str:
    import shutil
    import subprocess

    subprocess.run(["chown", "-R", f"{user}:", str(home)], check=True)
    shutil.copy(home / "id_container", key_copy)
    key_copy.chmod(0o600)
    proc = await asyncio.create_subprocess_exec(
        "ssh", "-F", "/dev/null", "-i", str(key_copy), "-p", str(port), "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
        f"{user}@127.0.0.1", command,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_sshd_login_and_idempotent_setup(tmp_path: Path, ssh_user: tuple[str, Path]) -> None:
    from ai.backend.kernel.services.intrinsic import Dropbear

    require_tool("ssh")
    if Dropbear.find() is None:
        toolcheck.missing("dropbear", "no dropbear binary; .ci/install.d/50-services.sh")
    user, home = ssh_user
    runner = FakeAgent(tmp_path, intrinsic_services=["sshd"])
    runner.work_dir = home
    runner.child_env["HOME"] = str(home)
    cluster = runner.config_dir / "ssh"
    cluster.mkdir()
    (cluster / "id_cluster").write_text("not a real key\n")
    (cluster / "id_cluster.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClusterKeyForTests cluster\n")
    runner.child_env["BACKENDAI_CLUSTER_REPLICAS"] = "main:1,sub:2"
    port = free_port()
    runner.intrinsic_ports = {"sshd": port}
    t0 = time.monotonic()
    mgr = await make_manager(runner)
    assert time.monotonic() - t0 < 0.5  # key generation happens in the background
    try:
        await wait_port(port)
        assert (await ssh_run(user, home, port, tmp_path / "key", "echo hello-$((6*7)); pwd")).split() == [
            "hello-42", str(home)]
        await mgr.op_start_service(json.dumps({"name": "sshd", "port": port, "ports": [port], "protocol": "tcp"}))
        assert await runner.next_frame() == ("service-result", {"status": "running"})
    finally:
        await mgr.shutdown()
    assert not port_open(port)
    # A restarted runner keeps the user key and adds no duplicate Host blocks or keys.
    key_before = (home / ".ssh" / "authorized_keys").read_text()
    runner2 = FakeAgent(tmp_path, intrinsic_services=["sshd"])
    runner2.work_dir, runner2.child_env, runner2.intrinsic_ports = home, runner.child_env, {"sshd": port}
    mgr2 = await make_manager(runner2)
    try:
        await wait_port(port)
        assert "hello" in await ssh_run(user, home, port, tmp_path / "key2", "echo hello")
    finally:
        await mgr2.shutdown()
    config = (home / ".ssh" / "config").read_text()
    assert config.count("Host main*") == 1 and config.count("Host sub*") == 1
    assert "IdentityFile " + str(cluster / "id_cluster") in config
    keys = (home / ".ssh" / "authorized_keys").read_text()
    assert keys == key_before and keys.count("ClusterKeyForTests") == 1


def test_jupyter_builtin_uses_our_gateway(tmp_path: Path) -> None:
    from traitlets.config.loader import PyFileConfigLoader

    from ai.backend.kernel.services.legacy import python_service

    start = python_service("jupyterlab", 8090, PY, tmp_path, gateway_url="http://127.0.0.1:9999",
                           gateway_token="tok", config_dir=str(tmp_path))
    assert start is not None and start.argv[:3] == [PY, "-m", "jupyterlab"]
    config_file = Path(start.argv[start.argv.index("--config") + 1])
    config = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config()
    assert config.ServerApp.port == 8090 and config.ServerApp.root_dir == str(tmp_path)
    assert config.GatewayClient.url == "http://127.0.0.1:9999" and config.GatewayClient.auth_token == "tok"
    assert python_service("jupyter", 8090, PY, tmp_path, config_dir=str(tmp_path)).argv[2] == "notebook"
    assert python_service("nope", 1, PY, tmp_path) is None


@pytest.mark.parametrize(("bind_ip", "listen"), [("127.0.0.1", "127.0.0.1"), ("*", "0.0.0.0"), ("0.0.0.0", "0.0.0.0")])
def test_builtin_apps_listen_on_the_intrinsic_address(tmp_path: Path, bind_ip: str, listen: str) -> None:
    """Loopback on a developer machine, every interface in an agent's container (docs/security.md)."""
    from traitlets.config.loader import PyFileConfigLoader

    from ai.backend.kernel.services.legacy import python_service

    start = python_service("jupyter", 8090, PY, tmp_path, config_dir=str(tmp_path), bind_ip=bind_ip)
    assert start is not None
    config_file = Path(start.argv[start.argv.index("--config") + 1])
    config = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config()
    assert config.ServerApp.ip == listen and config.NotebookApp.ip == listen
    board = python_service("tensorboard", 6006, PY, tmp_path, bind_ip=bind_ip)
    assert board is not None and board.argv[board.argv.index("--host") + 1] == listen


def test_file_names_in_ttyd_shell_line_are_quoted() -> None:
    """ttyd runs `SHELL -c "...; exec TMUX ..."`: a tmux path is one word, never shell syntax."""
    import shlex

    from ai.backend.kernel.services.intrinsic import ttyd_argv

    argv = ttyd_argv("/usr/bin/ttyd", 7681, "127.0.0.1", "/opt/my tools/tmux;reboot")
    if argv[-2] != "-c":
        pytest.skip("the login shell is ash: ttyd runs it without tmux")
    words = shlex.split(argv[-1])
    assert "/opt/my tools/tmux;reboot" in words and "reboot" not in words
