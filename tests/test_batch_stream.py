"""Batch output streaming through a real runner and real ZeroMQ sockets (docs/performance.md#batch-path):
lines printed slowly arrive as they are printed, a flood arrives whole in frames of at most 1 MiB,
and a slow agent loses nothing while the runner's memory stays bounded."""
from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
import zmq
import zmq.asyncio

from ai.backend.kernel.batch_io import READ_SIZE
from tests.runnerlib import RunnerProcess

NO_KERNEL = ["--kernel-name", "krunner-test-no-kernel"]  # batch mode needs no Jupyter kernel
MB = 1 << 20


class BatchAgent:
    """The agent's two sockets: clean/build/exec out, frames in, each stamped with its arrival time."""

    def __init__(self, runner: RunnerProcess, rcvhwm: int | None = None) -> None:
        self.ctx = zmq.asyncio.Context()
        self.push, self.pull = self.ctx.socket(zmq.PUSH), self.ctx.socket(zmq.PULL)
        self.push.linger = self.pull.linger = 0
        if rcvhwm is not None:  # a slow agent really is slow: little is buffered on its side
            self.pull.rcvhwm = rcvhwm
            self.pull.setsockopt(zmq.RCVBUF, 1 << 16)
        self.push.connect(f"tcp://127.0.0.1:{runner.replin_port}")
        self.pull.connect(f"tcp://127.0.0.1:{runner.replout_port}")

    async def start(self, command: str) -> None:
        for op, text in (("clean", ""), ("build", ""), ("exec", command)):
            await self.push.send_multipart([op.encode(), text.encode()])

    async def frames(self, timeout: float) -> AsyncIterator[tuple[bytes, bytes, float]]:
        """(op, payload, arrival time) up to and including `finished`."""
        async with asyncio.timeout(timeout):
            while True:
                op, payload = await self.pull.recv_multipart()
                yield op, payload, time.monotonic()
                if op == b"finished":
                    return

    def close(self) -> None:
        self.push.close()
        self.pull.close()
        self.ctx.term()


@pytest.fixture
async def runner(runner_dirs: dict[str, Path]) -> AsyncIterator[RunnerProcess]:
    proc = RunnerProcess("python", runner_dirs, extra_args=NO_KERNEL, runtime_path=sys.executable)
    await proc.start()
    try:
        yield proc
    finally:
        await proc.stop()


async def test_lines_printed_one_by_one_arrive_as_they_are_printed(runner: RunnerProcess) -> None:
    # a program printing a line now and then (progress, a log): no coalescing pause may hold a line
    # back. Each line carries the CLOCK_MONOTONIC time it was printed at (time.monotonic here too).
    program = ("import time\n"
               "for i in range(6):\n"
               "    time.sleep(0.2)\n"
               "    print(i, time.monotonic(), flush=True)\n")
    agent = BatchAgent(runner)
    try:
        await agent.start(f"{sys.executable} -c '{program}'")
        delays, lines, partial = [], [], b""
        async for op, payload, arrived in agent.frames(timeout=30):
            if op == b"stdout":  # a line may come in pieces (unbuffered, print writes each part)
                *complete, partial = (partial + payload).split(b"\n")
                for line in complete:  # complete when its newline arrived
                    number, printed = line.split()
                    lines.append(int(number))
                    delays.append(arrived - float(printed))
            elif op == b"finished":
                assert json.loads(payload) == {"exitCode": 0}
    finally:
        agent.close()
    assert lines == list(range(6))
    # a few ms on a quiet machine; the bounds leave room for a loaded CI machine, far below the
    # 0.2 s between lines (a line held until the next one, or the end, would exceed them)
    assert statistics.median(delays) < 0.03, delays
    assert max(delays) < 0.15, delays


async def test_a_flood_arrives_whole_in_large_frames_of_at_most_1mib(runner: RunnerProcess) -> None:
    size = 20_000_000
    agent = BatchAgent(runner)
    try:
        await agent.start(f"head -c {size} /dev/zero | tr '\\0' x")
        sizes, finished = [], None
        async for op, payload, _ in agent.frames(timeout=60):
            if op == b"stdout":
                assert payload == b"x" * len(payload)
                sizes.append(len(payload))
            elif op == b"finished":
                finished = json.loads(payload)
    finally:
        agent.close()
    assert finished == {"exitCode": 0}
    assert sum(sizes) == size
    assert max(sizes) <= READ_SIZE == MB  # the agent cuts frames above 10 MiB; ours stay at 1 MiB
    # coalesced: frames average well above the 4-64 KiB a writer's single writes would give
    assert statistics.mean(sizes) >= 256 << 10, (len(sizes), statistics.mean(sizes))


async def test_a_slow_agent_loses_nothing_and_the_runner_holds_little(runner: RunnerProcess) -> None:
    # numbered 1 KiB lines read at ~40 MB/s by an agent that buffers little: every line arrives,
    # in order, and the runner's memory stays within its agent-socket queue (16 frames of 1 MiB)
    # plus slack: the rest waits in the program's pipe, which blocks the program
    lines = 64 * 1024
    program = ("import sys\n"
               f"for i in range({lines}):\n"
               "    sys.stdout.write(f\"{i:010d}\" + \"y\" * 1013 + \"\\n\")\n")
    agent = BatchAgent(runner, rcvhwm=4)
    proc = psutil.Process(runner.proc.pid)  # type: ignore[union-attr]
    base = peak = proc.memory_info().rss
    try:
        await agent.start(f"{sys.executable} -c '{program}'")
        text, finished = bytearray(), None
        async for op, payload, _ in agent.frames(timeout=120):
            if op == b"stdout":
                text += payload
                peak = max(peak, proc.memory_info().rss)
                await asyncio.sleep(len(payload) / (40 * MB))
            elif op == b"finished":
                finished = json.loads(payload)
    finally:
        agent.close()
    assert finished == {"exitCode": 0}
    received = text.decode().split("\n")
    assert received[-1] == "" and len(received) == lines + 1
    assert [int(line[:10]) for line in received[:-1]] == list(range(lines))
    assert (peak - base) / MB <= 16 + 48, (base / MB, peak / MB)
