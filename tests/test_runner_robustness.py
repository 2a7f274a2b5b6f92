"""Bad input, floods and shutdown: the runner logs, answers what it can, keeps serving, exits in time."""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time

import msgpack
import psutil
import pytest
import zmq
import zmq.asyncio

from tests.agentlib import stdout_of
from tests.runnerlib import RunnerProcess


class RawPeer:
    """A bare agent-side socket pair, for frames the real agent would never send."""

    def __init__(self, runner: RunnerProcess) -> None:
        self.ctx = zmq.asyncio.Context()
        self.push = self.ctx.socket(zmq.PUSH)
        self.pull = self.ctx.socket(zmq.PULL)
        self.push.linger = self.pull.linger = 0
        self.push.connect(f"tcp://127.0.0.1:{runner.replin_port}")
        self.pull.connect(f"tcp://127.0.0.1:{runner.replout_port}")

    async def recv_until(self, op: bytes, timeout: float = 30.0) -> list[list[bytes]]:
        frames: list[list[bytes]] = []
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.pull.recv_multipart()
                frames.append(msg)
                if msg[0] == op:
                    return frames

    def close(self) -> None:
        self.push.close()
        self.pull.close()
        self.ctx.term()


def _garbage(rng: random.Random) -> list[bytes]:
    kind = rng.randrange(8)
    if kind == 0:  # wrong frame counts
        return [b"code"] * rng.choice([1, 3, 4])
    if kind == 1:  # unknown ops, some not even ASCII
        return [rng.randbytes(rng.randrange(1, 20)), rng.randbytes(rng.randrange(0, 50))]
    if kind == 2:  # invalid JSON in complete
        return [b"complete", rng.choice([b"{", b"[1,2]", b"null", b'{"code": 5}', rng.randbytes(30)])]
    if kind == 3:  # non-UTF-8 payloads for ops that take text
        return [rng.choice([b"input", b"event", b"shutdown-service"]), b"\xff\xfe" + rng.randbytes(10)]
    if kind == 4:  # huge payload for an unknown op
        return [b"no-such-op", b"x" * rng.randrange(1 << 20, 4 << 20)]
    if kind == 5:  # invalid events
        return [b"event", rng.choice([b"", b"{}", b"[]", b'{"type": "oom"}', b"not json"])]
    if kind == 6:  # empty frames
        return [b"", b""]
    return [b"status", rng.randbytes(5)]  # payload ignored; answered


async def test_ten_thousand_bad_messages_then_a_normal_query(runner: RunnerProcess, agent_client_factory) -> None:
    peer = RawPeer(runner)
    try:
        # the kernel is up before measuring memory
        await peer.push.send_multipart([b"code", b"print('warm')"])
        await peer.recv_until(b"finished", timeout=60)
        process = psutil.Process(runner.proc.pid)
        rng = random.Random(1234)
        rss: list[int] = []
        for _half in range(2):  # memory after the second half must not keep growing
            expected_replies = 0
            for _ in range(5_000):
                frames = _garbage(rng)
                expected_replies += frames[0] in (b"complete", b"status") and len(frames) == 2
                await peer.push.send_multipart(frames)
            # a marker status after the flood: every earlier answer has been sent by then
            await peer.push.send_multipart([b"status", b""])
            got = 0
            async with asyncio.timeout(60):
                while got < expected_replies + 1:
                    op, payload = await peer.pull.recv_multipart()
                    assert op in (b"completion", b"status"), op
                    if op == b"completion":
                        assert json.loads(payload) == {"suggestions": []}
                    else:
                        assert isinstance(msgpack.unpackb(payload)["started_at"], float)
                    got += 1
            rss.append(process.memory_info().rss)
        assert rss[1] - rss[0] < 64 * 2**20 and rss[1] < 512 * 2**20, rss
        # a non-UTF-8 query still gets its finish frame, with the reason on stderr
        await peer.push.send_multipart([b"code", b"print(1)\xff"])
        frames = await peer.recv_until(b"finished")
        assert frames[-1] == [b"finished", b'{"exitCode": 127}']
        assert any(f[0] == b"stderr" and b"not valid UTF-8" in f[1] for f in frames)
    finally:
        peer.close()
    assert runner.proc.returncode is None
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    results = await agent.execute_until_done(None, "query", "print('fine')")
    assert results[-1]["exitCode"] == 0 and stdout_of(results) == "fine\n"
    assert "dropped a message" in runner.log()


async def test_flood_of_output_arrives_whole(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    code = "import sys\nfor i in range(200_000): sys.stdout.write(f'{i}\\n')"
    results = await agent.execute_until_done(None, "query", code, timeout=120)
    assert results[-1]["exitCode"] == 0
    assert stdout_of(results) == "".join(f"{i}\n" for i in range(200_000))


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_shutdown_is_bounded_and_leaves_no_orphans(runner_dirs, sig: int) -> None:
    runner = RunnerProcess("python", runner_dirs)
    await runner.start()
    peer = RawPeer(runner)
    # the kernel spawns a grandchild, then floods output that nobody reads
    await peer.push.send_multipart([b"code", b"import subprocess; p = subprocess.Popen(['sleep', '300']); print('ok', flush=True)"])
    await peer.recv_until(b"finished", timeout=60)
    peer.pull.close()  # the agent is gone: nobody reads the PUSH socket any more
    await peer.push.send_multipart([b"code", b"while True: print('x' * 10000)"])
    await asyncio.sleep(2.0)
    children = _descendants(runner.proc.pid)
    assert any("sleep" in " ".join(c.cmdline()) for c in children if c.is_running())
    started = time.monotonic()
    await runner.stop(sig=sig, timeout=10)
    elapsed = time.monotonic() - started
    peer.push.close()
    peer.ctx.term()
    assert elapsed <= 5.0, f"shutdown took {elapsed:.1f} s"
    await asyncio.sleep(0.2)
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [c.cmdline() for c in alive]


async def test_unknown_ops_and_events_are_logged_and_ignored(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    await agent.send_event("oom", {"pid": os.getpid()})
    await agent.runner._sockets.send_multipart([b"frobnicate", b"{}"])
    results = await agent.execute_until_done(None, "query", "print('after')")
    assert stdout_of(results) == "after\n"
    await asyncio.sleep(0.2)
    log_text = runner.log()
    assert "Agent-notified event: oom" in log_text
    assert "unknown op 'frobnicate'" in log_text


async def test_one_huge_write_is_split_below_the_agents_frame_cap(runner: RunnerProcess, agent_client_factory) -> None:
    """ipykernel sends 20 MB written at once as one stream message; the agent cuts frames at
    10 MiB, so the runner must split it (every frame ≤ 1 MiB) for nothing to be lost."""
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    code = "import sys\nn = sys.stdout.write('é' * (10 * 2**20) + 'end\\n')"
    results = await agent.execute_until_done(None, "query", code, timeout=120)
    assert results[-1]["exitCode"] == 0
    out = stdout_of(results)
    assert len(out) == 10 * 2**20 + 4 and out.endswith("é" * 10 + "end\n")
    sizes = [len(payload) for op, payload, _ in agent.received if op == "stdout"]
    assert max(sizes) <= 2**20, max(sizes)
