"""Batch-mode output throughput: an `exec` command writing 50 MB through the runner, against the
same command writing into a plain pipe read by this process.

Starts a real runner (free ports, temp dirs, no Jupyter kernel), then, interleaved round by round:
  * pipe: `/bin/sh -c CMD` with stdout on a pipe, read here with 1 MiB reads until EOF;
  * wire: the agent's frames on raw ZeroMQ sockets: send clean/build/exec, read until `finished`;
  * agent-recv: the agent's own code-runner client (tests/agentlib), one `batch` call: time until
    its reader task has received (and UTF-8 decoded and queued) the `finished` frame;
  * agent-call: the same call until it returned its result (adds the agent's console aggregation
    and the JSON round trip of the 50 MB result, which are agent-side costs).
Prints MB/s (1 MB = 10^6 bytes) and the ratios against the pipe, then the load-independent figures
of the wire runner per 50 MB: its CPU split by thread (event loop, ZeroMQ's I/O thread, the rest:
pyzmq's garbage collector, helpers), its page faults and the frames it sent (docs/performance.md#batch-path).
Usage: python bench/batch.py [--rounds N] [--no-agent]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq
import zmq.asyncio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.runnerlib import RunnerProcess  # noqa: E402

SIZE = 50_000_000
CMD = f"head -c {SIZE} /dev/zero | tr '\\0' x"


def _stat(path: str) -> tuple[str, list[str]]:
    with open(path) as f:
        text = f.read()
    return text[text.index("(") + 1:text.rindex(")")], text.rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """user+system CPU time of a process (all its threads, zmq's I/O thread included)."""
    fields = _stat(f"/proc/{pid}/stat")[1]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_seconds(pid: int) -> dict[str, float]:
    """CPU seconds per thread kind: the event loop (the process's own thread), ZeroMQ I/O, other."""
    out: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name, fields = _stat(f"/proc/{pid}/task/{tid}/stat")
        except OSError:  # the thread ended meanwhile
            continue
        kind = "loop" if tid == str(pid) else "zmq I/O" if name.startswith("ZMQbg/IO") else "other"
        out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def page_faults(pid: int) -> int:
    return int(_stat(f"/proc/{pid}/stat")[1][7])  # minflt


def pipe_run() -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(["/bin/sh", "-c", CMD], stdout=subprocess.PIPE, bufsize=0)
    assert proc.stdout is not None
    received = 0
    while chunk := proc.stdout.read(1 << 20):
        received += len(chunk)
    proc.wait()
    assert received == SIZE, received
    return time.perf_counter() - start


class Wire:
    """The agent's sockets without its queues: clean/build/exec frames, then read until `finished`."""

    def __init__(self, runner: RunnerProcess) -> None:
        self.ctx = zmq.asyncio.Context()
        self.push, self.pull = self.ctx.socket(zmq.PUSH), self.ctx.socket(zmq.PULL)
        self.push.connect(f"tcp://127.0.0.1:{runner.replin_port}")
        self.pull.connect(f"tcp://127.0.0.1:{runner.replout_port}")
        self.max_frame = 0
        self.frames = 0

    async def run(self) -> float:
        start = time.perf_counter()
        for op, text in (("clean", ""), ("build", ""), ("exec", CMD)):
            await self.push.send_multipart([op.encode(), text.encode()])
        received = 0
        while True:
            op, payload = await self.pull.recv_multipart()
            if op == b"finished":
                assert json.loads(payload)["exitCode"] == 0, payload
                break
            if op == b"stdout":
                received += len(payload)
                self.frames += 1
                self.max_frame = max(self.max_frame, len(payload))
        assert received == SIZE, received
        return time.perf_counter() - start

    def close(self) -> None:
        self.push.close(linger=0)
        self.pull.close(linger=0)
        self.ctx.term()


async def agent_run(agent) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(seconds until the agent's reader got `finished`, seconds until the call returned)."""
    from tests.agentlib import stdout_of

    agent.received.clear()
    start = time.monotonic()
    result = await agent.execute(None, "batch", "", {"exec": CMD}, flush_timeout=60)
    returned = time.monotonic() - start
    assert result["status"] == "finished" and result["exitCode"] == 0 and len(stdout_of(result)) == SIZE
    finished_at = next(t for op, _, t in agent.received if op == "finished")
    return finished_at - start, returned


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-agent", action="store_true", help="skip the agent-client figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="krunner-bench-") as tmp:
        dirs = {name: Path(tmp) / name for name in ("work", "config", "runtime")}
        for path in dirs.values():
            path.mkdir()
        os.environ.setdefault("JUPYTER_RUNTIME_DIR", str(dirs["runtime"]))
        # one runner per client: two PULL peers on the runner's PUSH socket would share its frames
        runners = []
        for name in ("wire", "agent")[: 1 if args.no_agent else 2]:
            sub = {k: v / name for k, v in dirs.items()}
            for path in sub.values():
                path.mkdir()
            runner = RunnerProcess("python", sub, extra_args=["--kernel-name", "none"], debug=False)
            await runner.start()
            runners.append(runner)
        wire = Wire(runners[0])
        agent = None
        if not args.no_agent:
            from tests.agentlib import AgentClient

            agent = await AgentClient(runners[1].replin_port, runners[1].replout_port).open()
        times: dict[str, list[float]] = {"pipe": [], "wire": [], "agent-recv": [], "agent-call": []}
        try:
            await wire.run()  # warm-up
            if agent is not None:
                await agent_run(agent)
            assert runners[0].proc is not None
            pid = runners[0].proc.pid
            wire_cpu, threads, faults, frames = 0.0, {}, 0, 0
            for _ in range(args.rounds):
                times["pipe"].append(await asyncio.to_thread(pipe_run))
                before, before_threads, before_faults = cpu_seconds(pid), thread_seconds(pid), page_faults(pid)
                wire.frames = 0
                times["wire"].append(await wire.run())
                wire_cpu += cpu_seconds(pid) - before
                for kind, value in thread_seconds(pid).items():
                    threads[kind] = threads.get(kind, 0.0) + value - before_threads.get(kind, 0.0)
                faults += page_faults(pid) - before_faults
                frames += wire.frames
                if agent is not None:
                    recv, call = await agent_run(agent)
                    times["agent-recv"].append(recv)
                    times["agent-call"].append(call)
        finally:
            wire.close()
            if agent is not None:
                await agent.close()
            for runner in runners:
                await runner.stop()
    print(f"{SIZE / 1e6:.0f} MB via `{CMD}`, {args.rounds} rounds interleaved; largest frame {wire.max_frame} bytes")
    print(f"  {'':10s} {'median':>12s} {'best':>12s}")
    med = {k: SIZE / 1e6 / statistics.median(v) for k, v in times.items() if v}
    best = {k: SIZE / 1e6 / min(v) for k, v in times.items() if v}
    for name in med:
        print(f"  {name:10s} {med[name]:7.1f} MB/s {best[name]:7.1f} MB/s   "
              f"{med[name] / med['pipe']:.2f}x / {best[name] / best['pipe']:.2f}x pipe")
    per_run = wire_cpu / args.rounds
    print(f"  runner CPU per 50 MB: {per_run:.3f} s (= {SIZE / 1e6 / per_run:.0f} MB per runner CPU second); "
          + ", ".join(f"{kind} {value / args.rounds * 1000:.0f} ms" for kind, value in sorted(threads.items())))
    print(f"  runner page faults per 50 MB: {faults / args.rounds:.0f}; frames per 50 MB: {frames / args.rounds:.0f}")


if __name__ == "__main__":
    asyncio.run(main())
