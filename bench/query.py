"""Query-mode benchmark: the runner against raw jupyter_client on the *same* ipykernel.

Starts a real runner (free ports, temp dirs), then measures, interleaved so drift hits both sides:
  * round trip of `pass`: agent `code` frame → `finished` frame, vs. a raw AsyncKernelClient's
    execute_request → idle + execute_reply on the runner's own main kernel (via its connection file);
  * throughput of 20 MB of query output: stdout frames through the runner vs. iopub stream messages.
Prints each figure and its ratio against the reference.  Usage: python bench/query.py [--rounds N]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.runnerlib import RunnerProcess  # noqa: E402

OUTPUT_MB = 20
OUTPUT_CODE = f"import sys\nline = 'x' * 1023 + '\\n'\nfor _ in range({OUTPUT_MB} * 1024): sys.stdout.write(line)\n"


class AgentSide:
    """What the agent does on the wire, without its queues: send `code`, read until `finished`."""

    def __init__(self, runner: RunnerProcess) -> None:
        self.ctx = zmq.asyncio.Context()
        self.push, self.pull = self.ctx.socket(zmq.PUSH), self.ctx.socket(zmq.PULL)
        self.push.connect(f"tcp://127.0.0.1:{runner.replin_port}")
        self.pull.connect(f"tcp://127.0.0.1:{runner.replout_port}")

    async def query(self, code: str) -> int:
        await self.push.send_multipart([b"code", code.encode()])
        received = 0
        while True:
            op, payload = await self.pull.recv_multipart()
            if op == b"finished":
                assert json.loads(payload)["exitCode"] == 0, payload
                return received
            if op == b"stdout":
                received += len(payload)

    def close(self) -> None:
        self.push.close(linger=0)
        self.pull.close(linger=0)
        self.ctx.term()


async def raw_query(kc: AsyncKernelClient, code: str) -> int:
    msg_id = kc.execute(code)
    received, idle, replied = 0, False, False
    while not (idle and replied):
        if not idle:
            msg = await kc.get_iopub_msg()
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                received += len(msg["content"]["text"].encode())
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
        else:
            reply = await kc.get_shell_msg()
            replied = reply["parent_header"].get("msg_id") == msg_id
    return received


async def drain_iopub(kc: AsyncKernelClient, quiet: float = 0.05) -> int:
    """Read (and drop) what waits on the raw client's iopub until it has been quiet for `quiet` s:
    the output of the agent's queries, when the kernel publishes it there (the original runner's;
    ours sends it to the runner alone, docs/query-mode.md#the-output-channel). Done before the raw
    client's timed round, so that it is not charged for decoding output that is not its own."""
    dropped = 0
    while True:
        try:
            await kc.get_iopub_msg(timeout=quiet)
        except Exception:  # queue.Empty: quiet
            return dropped
        dropped += 1


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


async def main(rounds: int, output_rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="krunner-bench-") as tmp:
        dirs = {name: Path(tmp) / name for name in ("work", "config", "runtime")}
        for d in dirs.values():
            d.mkdir()
        os.environ["JUPYTER_RUNTIME_DIR"] = str(dirs["runtime"])
        runner = RunnerProcess("python", dirs, debug=False)
        await runner.start()
        agent = AgentSide(runner)
        try:
            await agent.query("pass")  # waits for the kernel
            (conn,) = dirs["runtime"].glob("kernel-*.json")
            kc = AsyncKernelClient()
            kc.load_connection_file(str(conn))
            kc.start_channels()
            await kc.wait_for_ready(timeout=30)
            for _ in range(50):  # warm both paths
                await agent.query("pass")
                await raw_query(kc, "pass")
            ours: list[float] = []
            ref: list[float] = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                await agent.query("pass")
                t1 = time.perf_counter()
                await raw_query(kc, "pass")
                t2 = time.perf_counter()
                ours.append((t1 - t0) * 1000)
                ref.append((t2 - t1) * 1000)
            ours_rate: list[float] = []
            ref_rate: list[float] = []
            for i in range(output_rounds):
                for side in (("ours", "ref") if i % 2 == 0 else ("ref", "ours")):  # neither always first
                    await drain_iopub(kc)
                    t0 = time.perf_counter()
                    n = await (agent.query(OUTPUT_CODE) if side == "ours" else raw_query(kc, OUTPUT_CODE))
                    rate = n / 2**20 / (time.perf_counter() - t0)
                    assert n == OUTPUT_MB * 2**20, (side, n)
                    (ours_rate if side == "ours" else ref_rate).append(rate)
            kc.stop_channels()
        finally:
            agent.close()
            await runner.stop()
    p50o, p50r = statistics.median(ours), statistics.median(ref)
    p95o, p95r = pct(ours, 95), pct(ref, 95)
    mo, mr = statistics.median(ours_rate), statistics.median(ref_rate)
    print(f"query round trip of `pass` ({rounds} rounds, interleaved, same ipykernel)")
    print(f"  runner (agent frames)   p50 {p50o:6.2f} ms   p95 {p95o:6.2f} ms")
    print(f"  raw jupyter_client      p50 {p50r:6.2f} ms   p95 {p95r:6.2f} ms")
    print(f"  ratio                   p50 {p50o / p50r:6.2f}x     p95 {p95o / p95r:6.2f}x   (target p50 <= 1.10)")
    print(f"query output, {OUTPUT_MB} MB ({output_rounds} rounds, median)")
    print(f"  runner {mo:7.1f} MB/s   raw jupyter_client {mr:7.1f} MB/s   ratio {mo / mr:5.2f}x   (target >= 1.0)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--output-rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.output_rounds))
