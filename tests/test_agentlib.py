"""Self-test of tests/agentlib: the REAL agent code-runner client against a tiny scripted peer.

The peer is a real ZeroMQ PULL/PUSH pair speaking docs/protocol.md with canned answers, so these
tests check that the harness loads and drives the agent's own code (attach, feed_*, read_output,
get_next_result, console aggregation, run queueing) without needing our runner.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
import pytest_asyncio
import zmq
import zmq.asyncio

from tests.agentlib import AgentClient, console_items, load_agent_kernel, stderr_of, stdout_of, wheel_dir
from tests.agentlib.fixtures import (  # noqa: F401
    AGENT_WARNING_FILTER,
    agent_client_factory,
    agent_kernel_module,
)
from tests.agentlib.loader import transform_source

pytestmark = pytest.mark.filterwarnings(AGENT_WARNING_FILTER)

REPO = Path(__file__).resolve().parent.parent
PNG = "data:image/png;base64,iVBORw0KGgo="


class ScriptedPeer:
    """A fake runner: binds repl-in (PULL) and repl-out (PUSH) on random ports, answers ops."""

    def __init__(self) -> None:
        self.ctx = zmq.asyncio.Context()
        self.pull = self.ctx.socket(zmq.PULL)
        self.push = self.ctx.socket(zmq.PUSH)
        self.pull.linger = self.push.linger = 0
        self.in_port = self.pull.bind_to_random_port("tcp://127.0.0.1")
        self.out_port = self.push.bind_to_random_port("tcp://127.0.0.1")
        self.started_at = time.monotonic()
        self.ops: list[tuple[str, bytes]] = []
        self.inputs: asyncio.Queue[str] = asyncio.Queue()
        self.interrupted = asyncio.Event()
        self.tasks: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.new_style_batch = False
        self._bg: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> ScriptedPeer:
        self._bg = [asyncio.create_task(self._serve()), asyncio.create_task(self._work())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._bg:
            t.cancel()
        await asyncio.gather(*self._bg, return_exceptions=True)
        self.pull.close()
        self.push.close()
        self.ctx.term()

    def ops_named(self, *names: str) -> list[tuple[str, bytes]]:
        return [op for op in self.ops if op[0] in names]

    async def send(self, msg_type: str, payload: bytes | str | dict[str, Any] = b"") -> None:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        if isinstance(payload, str):
            payload = payload.encode()
        await self.push.send_multipart([msg_type.encode(), payload])

    async def _serve(self) -> None:
        while True:
            frames = await self.pull.recv_multipart()
            if len(frames) != 2:
                continue
            op, data = frames[0].decode("ascii"), frames[1]
            self.ops.append((op, data))
            text = data.decode()
            if op == "status":
                await self.send("status", msgpack.packb({"started_at": self.started_at}, use_bin_type=True))
            elif op == "complete":
                code = json.loads(text)["code"]
                await self.send("completion", {"suggestions": [code + "nt"]})
            elif op == "get-apps":
                await self.send("apps-result", {"status": "done", "data": [{"name": "jupyter"}]})
            elif op == "start-service":
                await self.send("service-result", {"status": "started"})
            elif op == "start-model-service":
                await self.send("model-service-result", {"status": "started"})
                await self.send("model-service-status", {"model_name": "m", "is_healthy": True})
            elif op == "input":
                await self.inputs.put(text)
            elif op == "interrupt":
                self.interrupted.set()
            elif op in ("clean", "build", "exec", "code"):
                await self.tasks.put((op, text))

    async def _work(self) -> None:
        while True:
            op, text = await self.tasks.get()
            if op == "code":
                await self._code(text)
            else:
                await self._batch_step(op, text)

    async def _batch_step(self, op: str, cmd: str) -> None:
        if op == "clean":
            if not self.new_style_batch:
                await self.send("clean-finished", {"exitCode": 0})
        elif op == "build":
            await self.send("stdout", "built\n")
            if not self.new_style_batch:
                await self.send("build-finished", {"exitCode": 0})
        else:
            if not self.new_style_batch:
                await asyncio.sleep(0.3)  # arrives after the client re-attached
            await self.send("stdout", "ran\n")
            await self.send("finished", {"exitCode": 0})

    async def _code(self, code: str) -> None:
        if code == "hello":
            await self.send("stdout", "a")
            await self.send("stdout", "b\n")
            await self.send("stderr", "err\n")
            await self.send("media", {"type": "image/png", "data": PNG})
            await self.send("stdout", "c")
            await self.send("finished", {"exitCode": 0})
        elif code == "utf8":
            await self.send("stdout", b"caf\xc3")  # UTF-8 sequence split across frames
            await self.send("stdout", b"\xa9\n")
            await self.send("finished", {"exitCode": 0})
        elif code == "slow":
            await self.send("stdout", "a\n")
            await asyncio.sleep(0.5)
            await self.send("stdout", "b\n")
            await self.send("finished", {"exitCode": 0})
        elif code == "ask":
            await self.send("stdout", ">> ")
            await self.send("waiting-input", {"is_password": False})
            name = await self.inputs.get()
            await self.send("stdout", f"Hello, {name}!\n")
            await self.send("finished", {"exitCode": 0})
        elif code == "loop":
            self.interrupted.clear()
            await self.send("stdout", "tick\n")
            await self.interrupted.wait()
            await self.send("stderr", "KeyboardInterrupt\n")
            await self.send("finished", {"exitCode": 1})
        else:
            await self.send("stderr", f"unknown {code}")
            await self.send("finished", {"exitCode": 127})


@pytest_asyncio.fixture
async def peer() -> Any:
    async with ScriptedPeer() as p:
        yield p


@pytest_asyncio.fixture
async def agent(peer: ScriptedPeer) -> Any:
    async with AgentClient(peer.in_port, peer.out_port, call_timeout=10) as client:
        yield client


def test_real_agent_code_is_loaded() -> None:
    mod = load_agent_kernel()
    assert mod.__name__ == "ai.backend.agent.kernel"
    assert mod.__file__.startswith(str(wheel_dir())) and mod.__file__.endswith("ai/backend/agent/kernel.py")
    # the wheel's source, not ours: get_next_result is the agent's own function
    assert mod.AbstractCodeRunner.get_next_result.__module__ == "ai.backend.agent.kernel"
    assert mod.SERVICE_START_REPLY_TIMEOUT_SEC == 35.0
    import ai.backend.kernel  # our namespace package still imports

    assert "ai/backend/kernel" in ai.backend.kernel.__file__


def test_transform_only_moves_override_and_keeps_line_numbers() -> None:
    src = "from __future__ import annotations\nfrom typing import (\n    Any,\n    override,\n)\nx = 1\n"
    out = transform_source(src)
    assert out.count("\n") == src.count("\n")
    assert "from typing_extensions import override" in out
    assert out.splitlines()[5] == "x = 1"


@pytest.mark.asyncio
async def test_status_and_ping(agent: AgentClient, peer: ScriptedPeer) -> None:
    status = await agent.status()
    assert status == {"started_at": pytest.approx(peer.started_at)}
    assert (await agent.ping())["started_at"] == pytest.approx(peer.started_at)
    ports = [{"name": "jupyter", "protocol": "preopen", "container_ports": [8080]}]
    assert await agent.wait_ready(ports) == {"status": "done", "data": [{"name": "jupyter"}]}
    assert ports[0]["protocol"] == "preopen"


@pytest.mark.asyncio
async def test_query_console_aggregation(agent: AgentClient, peer: ScriptedPeer) -> None:
    results = await agent.execute_until_done(None, "query", "hello")
    assert [r["status"] for r in results] == ["finished"]
    r = results[0]
    assert r["exitCode"] == 0 and r["options"] is None and len(r["runId"]) == 16
    assert r["console"] == [
        ["stdout", "ab\n"],
        ["stderr", "err\n"],
        ["media", ["image/png", PNG]],
        ["stdout", "c"],
    ]
    assert stdout_of(results) == "ab\nc" and stderr_of(results) == "err\n"
    assert ("code", b"hello") in peer.ops


@pytest.mark.asyncio
async def test_api_v1_fields(agent: AgentClient) -> None:
    (r,) = await agent.execute_until_done(None, "query", "hello", api_version=1)
    assert (r["stdout"], r["stderr"]) == ("ab\nc", "err\n")
    assert r["media"] == [["image/png", PNG]] and "console" not in r
    assert stdout_of(r) == "ab\nc"


@pytest.mark.asyncio
async def test_utf8_split_across_frames(agent: AgentClient) -> None:
    assert stdout_of(await agent.execute_until_done(None, "query", "utf8")) == "café\n"


@pytest.mark.asyncio
async def test_continuation(agent: AgentClient) -> None:
    results = await agent.execute_until_done(None, "query", "slow", flush_timeout=0.2)
    statuses = [r["status"] for r in results]
    assert statuses[0] == "continued" and statuses[-1] == "finished" and len(statuses) >= 2
    assert set(statuses[1:-1]) <= {"continued"}
    assert results[0]["console"] == [["stdout", "a\n"]] and results[0]["exitCode"] is None
    assert stdout_of(results) == "a\nb\n"
    assert len({r["runId"] for r in results}) == 1


@pytest.mark.asyncio
async def test_waiting_input(agent: AgentClient, peer: ScriptedPeer) -> None:
    seen: list[dict[str, Any]] = []

    async def answer(result: dict[str, Any]) -> str:
        seen.append(result)
        return "Lablup"

    results = await agent.execute_until_done(None, "query", "ask", on_waiting_input=answer)
    assert [r["status"] for r in results] == ["waiting-input", "finished"]
    assert results[0]["options"] == {"is_password": False}
    assert console_items(results) == [["stdout", ">> "], ["stdout", "Hello, Lablup!\n"]]
    assert ("input", b"Lablup") in peer.ops and seen == results[:1]
    # without a callback the loop stops at waiting-input
    results = await agent.execute_until_done(None, "query", "ask")
    assert results[-1]["status"] == "waiting-input"
    done = await agent.execute_until_done(results[-1]["runId"], "input", "X")
    assert stdout_of(done) == "Hello, X!\n"


@pytest.mark.asyncio
async def test_interrupt(agent: AgentClient, peer: ScriptedPeer) -> None:
    first = await agent.execute("r-loop", "query", "loop", flush_timeout=0.2)
    assert first["status"] == "continued" and stdout_of(first) == "tick\n"
    assert await agent.interrupt() == {"status": "finished"}
    rest = await agent.execute_until_done("r-loop", "continue")
    assert rest[-1]["status"] == "finished" and rest[-1]["exitCode"] == 1
    assert "KeyboardInterrupt" in stderr_of(rest)
    assert ("interrupt", b"") in peer.ops


@pytest.mark.asyncio
async def test_runs_are_serialised(agent: AgentClient) -> None:
    slow = asyncio.create_task(agent.execute_until_done("run-a", "query", "slow", flush_timeout=5))
    await asyncio.sleep(0.1)
    fast = await agent.execute_until_done("run-b", "query", "hello", flush_timeout=5)
    assert slow.done()  # run-b could only attach after run-a finished
    assert stdout_of(await slow) == "a\nb\n" and stdout_of(fast) == "ab\nc"


@pytest.mark.asyncio
async def test_batch_frames_and_the_agent_gap(agent: AgentClient, peer: ScriptedPeer) -> None:
    # Original frame sequence: the agent drops build output and build-finished that arrive between
    # calls (docs/protocol.md#the-agent-side) -- proof that the real agent logic is running.
    opts = {"clean": "", "build": "make", "exec": "./main"}
    results = await agent.execute_until_done(None, "batch", "", opts)
    assert [r["status"] for r in results] == ["clean-finished", "finished"]
    assert stdout_of(results) == "ran\n"
    # ... although they did arrive (the passive frame log shows them)
    assert agent.received_types() == ["clean-finished", "stdout", "build-finished", "stdout", "finished"]
    assert [op for op, _, _ in agent.sent if op != "status"] == ["clean", "build", "exec"]
    assert peer.ops_named("clean", "build", "exec") == [
        ("clean", b""), ("build", b"make"), ("exec", b"./main"),
    ]
    # krunner-bridge sequence (docs/protocol.md#batch-frame-sequences): one run, nothing lost.
    peer.new_style_batch = True
    results = await agent.execute_until_done(None, "batch", "", {"build": None, "exec": "*"})
    assert [r["status"] for r in results] == ["finished"] and stdout_of(results) == "built\nran\n"
    assert peer.ops_named("clean", "build", "exec")[3:] == [("clean", b""), ("build", b""), ("exec", b"*")]


@pytest.mark.asyncio
async def test_side_calls(agent: AgentClient, peer: ScriptedPeer) -> None:
    assert await agent.complete("pri", {"row": 0, "col": 3}) == {
        "status": "finished", "error": None, "suggestions": ["print"],
    }
    assert json.loads(peer.ops_named("complete")[0][1]) == {"code": "pri", "row": 0, "col": 3}
    assert await agent.get_apps() == {"status": "done", "data": [{"name": "jupyter"}]}
    payload = AgentClient.service_payload("jupyter", [8080, 8081], "http", {"envs": {}})
    assert await agent.start_service(payload) == {"status": "started"}
    assert json.loads(peer.ops_named("start-service")[0][1]) == payload
    assert await agent.start_model_service({"model": "m", "service": {}}) == {"status": "started"}
    await agent.shutdown_service("jupyter")
    await agent.send_event("oom", {"x": 1})
    for _ in range(100):
        if peer.ops_named("event"):
            break
        await asyncio.sleep(0.01)
    assert peer.ops_named("shutdown-service") == [("shutdown-service", b'"jupyter"')]
    assert json.loads(peer.ops_named("event")[0][1]) == {"type": "oom", "data": {"x": 1}}


@pytest.mark.asyncio
async def test_factory_fixture(agent_client_factory: Any, peer: ScriptedPeer) -> None:
    client = await agent_client_factory(peer.in_port, peer.out_port)
    assert (await client.status())["started_at"] == pytest.approx(peer.started_at)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.asyncio
async def test_against_the_real_runner(tmp_path: Path) -> None:
    """End to end: the agent's client against `python -m ai.backend.kernel ... python`."""
    dirs = {name: tmp_path / name for name in ("work", "config", "runtime", "home", "data")}
    for d in dirs.values():
        d.mkdir()
    pin, pout = _free_port(), _free_port()
    env = dict(
        os.environ,
        HOME=str(dirs["home"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
    )
    log_path = tmp_path / "runner.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "ai.backend.kernel",
                "--replin-port", str(pin), "--replout-port", str(pout), "--bind-ip", "127.0.0.1",
                "--work-dir", str(dirs["work"]), "--config-dir", str(dirs["config"]),
                "--runtime-dir", str(dirs["runtime"]),
                "--user-input-socket", str(dirs["runtime"] / "user-input.sock"),
                "--service-defs-dir", str(dirs["config"] / "service-defs"), "python",
            ],
            cwd=str(REPO), env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    try:
        async with AgentClient(pin, pout, call_timeout=60) as agent:
            assert (await agent.wait_ready())["status"] == "done"
            assert isinstance((await agent.status())["started_at"], float)
            results = await agent.execute_until_done(None, "query", "print('hi'); 6*7")
            assert results[-1]["status"] == "finished" and results[-1]["exitCode"] == 0
            assert stdout_of(results) == "hi\n42"
            results = await agent.execute_until_done(
                None, "query", "import time\nprint('a', flush=True); time.sleep(0.8); print('b')",
                flush_timeout=0.3,
            )
            assert results[0]["status"] == "continued" and results[-1]["status"] == "finished"
            assert stdout_of(results) == "a\nb\n"
    except BaseException:
        print(log_path.read_text(errors="replace"))
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("runner did not stop within 10 s of SIGTERM")
