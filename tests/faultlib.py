"""Load and fault scenarios against a real runner, shared by tests/test_load_faults.py (small sizes,
asserted) and bench/soak.py (full sizes, printed). Each returns its figures as a dict; the
properties every caller checks are in `check_*` next to it (docs/testing.md)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import time
import uuid
from dataclasses import dataclass, field

import psutil
import zmq
import zmq.asyncio

from tests.runnerlib import RunnerProcess

MB = 1 << 20


class WireAgent:
    """The agent's side of the wire on raw sockets: `code` out, frames in (what the agent does,
    without its queues, so a slow reader really is slow and a disconnect really disconnects)."""

    def __init__(self, runner: RunnerProcess, rcvhwm: int | None = None) -> None:
        self.ctx = zmq.asyncio.Context()
        self.push, self.pull = self.ctx.socket(zmq.PUSH), self.ctx.socket(zmq.PULL)
        self.push.linger = self.pull.linger = 0
        if rcvhwm is not None:
            self.pull.rcvhwm = rcvhwm
            self.pull.setsockopt(zmq.RCVBUF, 1 << 16)
        self.push.connect(f"tcp://127.0.0.1:{runner.replin_port}")
        self.pull.connect(f"tcp://127.0.0.1:{runner.replout_port}")

    async def send_code(self, code: str) -> None:
        await self.push.send_multipart([b"code", code.encode()])

    async def recv(self, timeout: float) -> tuple[bytes, bytes]:
        op, payload = await asyncio.wait_for(self.pull.recv_multipart(), timeout)
        return op, payload

    async def query(self, code: str, timeout: float = 60.0) -> tuple[int, str]:
        """(exit code, stdout) of one query; TimeoutError if `finished` does not come."""
        await self.send_code(code)
        out = []
        async with asyncio.timeout(timeout):
            while True:
                op, payload = await self.pull.recv_multipart()
                if op == b"finished":
                    return json.loads(payload)["exitCode"], "".join(out)
                if op == b"stdout":
                    out.append(payload.decode())

    def close(self) -> None:
        self.push.close()
        self.pull.close()
        self.ctx.term()


def runner_process(runner: RunnerProcess) -> psutil.Process:
    assert runner.proc is not None
    return psutil.Process(runner.proc.pid)


# -------------------------------------------------------------------- 1. queries in a row
async def queries_in_a_row(runner: RunnerProcess, count: int, warmup: int = 50) -> dict:
    """`count` queries back to back after `warmup`: latency p50/p99, RSS and fd growth."""
    agent = WireAgent(runner)
    proc = runner_process(runner)
    try:
        # warm-up: `warmup` queries, and at least 3 s, so that the kernel's own start-up work in
        # the background (the completer warming up, docs/performance.md) is behind us
        started = time.monotonic()
        i = 0
        while i < warmup or time.monotonic() - started < 3.0:
            assert (await agent.query(f"x = {i}"))[0] == 0
            i += 1
        rss0, fds0 = proc.memory_info().rss, proc.num_fds()
        latencies = []
        for i in range(count):
            code = "print(x)" if i % 2 else f"x = {i}"  # a value set, then read back
            t0 = time.perf_counter()
            rc, out = await agent.query(code)
            latencies.append(time.perf_counter() - t0)
            assert rc == 0 and out == (f"{i - 1}\n" if i % 2 else ""), (i, rc, out)
        rss1, fds1 = proc.memory_info().rss, proc.num_fds()
    finally:
        agent.close()
    latencies.sort()
    return {
        "queries": count, "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1e3, "max_ms": latencies[-1] * 1e3,
        "rss_growth_mb": (rss1 - rss0) / MB, "rss_mb": rss1 / MB, "fd_growth": fds1 - fds0,
    }


def check_queries_in_a_row(fig: dict) -> None:
    assert fig["rss_growth_mb"] <= 5, fig
    assert fig["p99_ms"] <= 3 * fig["p50_ms"], fig
    assert fig["fd_growth"] <= 0, fig


# -------------------------------------------------------------------- 2. kernel killed repeatedly
SLEEPER = "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)"


async def kills_during_queries(runner: RunnerProcess, kills: int, kill_after: float = 1.0) -> dict:
    """SIGKILL the kernel during a query `kills` times, each about `kill_after` s after the
    previous recovery; every killed query must end with `finished`, the next one must work."""
    agent = WireAgent(runner)
    recoveries: list[float] = []
    exit_codes: list[int] = []
    try:
        assert (await agent.query("print('warm')", timeout=60))[0] == 0
        ready_at = time.monotonic()
        for _ in range(kills):
            await agent.send_code(SLEEPER)
            op, payload = await agent.recv(timeout=30)
            assert op == b"stdout", (op, payload)
            pid = int(payload.split()[0])
            await asyncio.sleep(max(0.0, ready_at + kill_after - time.monotonic()))
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            async with asyncio.timeout(15):  # the killed query ends; it must not hang
                while True:
                    op, payload = await agent.pull.recv_multipart()
                    if op == b"finished":
                        exit_codes.append(json.loads(payload)["exitCode"])
                        break
            rc, out = await agent.query("print('back')", timeout=30)
            assert rc == 0 and out == "back\n", (rc, out)
            ready_at = time.monotonic()
            recoveries.append(ready_at - killed_at)
    finally:
        agent.close()
    return {"kills": kills, "finished": len(exit_codes), "nonzero_exit": sum(1 for c in exit_codes if c),
            "recovery_max_s": max(recoveries), "recovery_median_s": statistics.median(recoveries)}


def check_kills(fig: dict) -> None:
    assert fig["finished"] == fig["kills"] == fig["nonzero_exit"], fig
    assert fig["recovery_max_s"] < 5, fig


# -------------------------------------------------------------------- 3. slow reader, big output
def numbered_output_code(total_bytes: int, flush_each_line: bool = False) -> str:
    """Lines of 1 KiB, each starting with its number: order and completeness can be checked.
    `flush_each_line`: one kernel message per line (many small messages instead of a few big ones)."""
    lines = total_bytes // 1024
    flush = "; sys.stdout.flush()" if flush_each_line else ""
    return ("import sys\nw = sys.stdout.write\n"
            f"for i in range({lines}): w(f'{{i:010d}}' + 'x' * 1013 + '\\n'){flush}\n")


@dataclass
class LineChecker:
    """Feeds stdout chunks; checks lines arrive numbered 0, 1, 2, ... (no loss, no reordering)."""
    expected: int = 0
    partial: str = ""
    errors: list[str] = field(default_factory=list)

    def feed(self, text: str) -> None:
        text = self.partial + text
        *lines, self.partial = text.split("\n")
        for line in lines:
            if self.expected >= 0 and (line[:10] != f"{self.expected:010d}" or len(line) != 1023):
                if len(self.errors) < 5:
                    self.errors.append(f"line {self.expected}: got {line[:20]!r}...")
                self.expected = int(line[:10]) if line[:10].isdigit() else -1
            if self.expected >= 0:
                self.expected += 1


async def _sample_rss(proc: psutil.Process, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], proc.memory_info().rss)
        except psutil.NoSuchProcess:
            return
        await asyncio.sleep(0.05)


async def slow_reader(runner: RunnerProcess, total_bytes: int, read_mb_s: float = 30.0,
                      flush_each_line: bool = False) -> dict:
    """`total_bytes` of numbered output read at `read_mb_s`: runner RSS peak, order, `finished`."""
    agent = WireAgent(runner, rcvhwm=4)
    proc = runner_process(runner)
    try:
        assert (await agent.query("print('warm')", timeout=60))[0] == 0
        await runner.wait_subsystems()
        base = proc.memory_info().rss
        peak, stop = [base], asyncio.Event()
        sampler = asyncio.get_running_loop().create_task(_sample_rss(proc, peak, stop))
        checker, received, finished = LineChecker(), 0, None
        t0 = time.monotonic()
        await agent.send_code(numbered_output_code(total_bytes, flush_each_line))
        async with asyncio.timeout(max(120, total_bytes / MB / read_mb_s * 4)):
            while finished is None:
                op, payload = await agent.pull.recv_multipart()
                if op == b"stdout":
                    received += len(payload)
                    checker.feed(payload.decode())
                    await asyncio.sleep(len(payload) / (read_mb_s * MB))
                elif op == b"finished":
                    finished = json.loads(payload)["exitCode"]
        elapsed = time.monotonic() - t0
        stop.set()
        await sampler
    finally:
        agent.close()
    return {"output_mb": total_bytes / MB, "received_mb": received / MB, "exit": finished,
            "lines_in_order": checker.expected, "order_errors": checker.errors,
            "rss_base_mb": base / MB, "rss_peak_growth_mb": (peak[0] - base) / MB, "seconds": elapsed}


def spill_rss_bound_mb(memory_limit_mb: float) -> float:
    """The runner's stated bound for a slow agent (docs/query-mode.md#slow-agents): the spill
    queue's memory limit, 16 frames of 1 MiB in the agent socket, and 64 MiB for messages in flight
    and the allocator."""
    return memory_limit_mb + 16 + 64


def check_slow_reader(fig: dict, rss_bound_mb: float) -> None:
    assert fig["exit"] == 0 and not fig["order_errors"], fig
    assert fig["lines_in_order"] == int(fig["output_mb"] * 1024), fig
    assert fig["rss_peak_growth_mb"] <= rss_bound_mb, fig


# -------------------------------------------------------------------- 4. agent reconnects mid-output
async def reconnect_mid_output(runner: RunnerProcess, lines: int = 20_000) -> dict:
    """The agent goes away in the middle of a query's output and a new one connects: the new
    one gets the rest (a contiguous, ordered tail ending in `finished`) and the next query works."""
    first = WireAgent(runner, rcvhwm=4)
    code = ("import sys, time\n"
            f"for i in range({lines}):\n    sys.stdout.write(f'{{i:010d}}' + 'x' * 1013 + '\\n')\n"
            "    if i % 500 == 0: sys.stdout.flush(); time.sleep(0.02)\n")
    await first.send_code(code)
    seen_first = 0
    async with asyncio.timeout(60):
        while seen_first < 64 * 1024:
            op, payload = await first.pull.recv_multipart()
            assert op == b"stdout", op
            seen_first += len(payload)
    first.close()
    await asyncio.sleep(0.5)  # output keeps coming while nobody listens
    second = WireAgent(runner)
    text, finished = [], None
    try:
        async with asyncio.timeout(120):
            while finished is None:
                op, payload = await second.pull.recv_multipart()
                if op == b"stdout":
                    text.append(payload.decode())
                elif op == b"finished":
                    finished = json.loads(payload)["exitCode"]
        numbers = [int(line[:10]) for line in "".join(text).split("\n") if line[:10].isdigit() and len(line) == 1023]
        rc, out = await second.query("print('still serving')")
    finally:
        second.close()
    return {"exit": finished, "tail_lines": len(numbers), "tail_first": numbers[0] if numbers else None,
            "tail_last": numbers[-1] if numbers else None,
            "tail_contiguous": numbers == list(range(numbers[0], numbers[0] + len(numbers))) if numbers else False,
            "next_query": (rc, out), "lines": lines}


def check_reconnect(fig: dict) -> None:
    assert fig["exit"] == 0 and fig["tail_contiguous"], fig
    assert fig["tail_last"] == fig["lines"] - 1 and fig["tail_lines"] > 0, fig
    assert fig["next_query"] == (0, "still serving\n"), fig


# -------------------------------------------------------------------- 5. gateway clients + agent
def _ws_client_run(url: str, origin_host: str, tag: str, rounds: int) -> list[str]:
    """One websocket client (own thread): `rounds` executes; returns problems (empty = fine)."""
    import websocket

    problems: list[str] = []
    ws = websocket.create_connection(url, timeout=120, suppress_origin=True)
    session = uuid.uuid4().hex
    try:
        for r in range(rounds):
            msg_id = uuid.uuid4().hex
            header = {"msg_id": msg_id, "msg_type": "execute_request", "session": session,
                      "username": tag, "version": "5.3", "date": ""}
            ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "channel": "shell",
                                "content": {"code": f"print('{tag}-{r}')", "silent": False}}))
            out, replied, idle = "", False, False
            while not (replied and idle):
                msg = json.loads(ws.recv())
                parent = msg["parent_header"].get("msg_id")
                if msg["channel"] != "iopub" and parent != msg_id:
                    problems.append(f"{tag}: got another client's {msg['msg_type']}")
                if parent != msg_id:
                    continue  # iopub is broadcast: other clients' output is theirs to ignore
                if msg["msg_type"] == "stream":
                    out += msg["content"]["text"]
                elif msg["msg_type"] == "execute_reply":
                    replied = True
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    idle = True
            if out != f"{tag}-{r}\n":
                problems.append(f"{tag} round {r}: stdout {out!r}")
    finally:
        ws.close()
    return problems


async def gateway_clients_and_agent(runner: RunnerProcess, gateway_url: str, kernel_id: str, token: str,
                                    clients: int = 50, rounds: int = 3, agent_queries: int = 20) -> dict:
    url = gateway_url.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels?token={token}"
    agent = WireAgent(runner)

    async def agent_side() -> list[str]:
        problems = []
        for i in range(agent_queries):
            rc, out = await agent.query(f"print('agent-{i}')", timeout=300)
            if (rc, out) != (0, f"agent-{i}\n"):
                problems.append(f"agent query {i}: {(rc, out)!r}")
        return problems

    t0 = time.monotonic()
    try:
        results = await asyncio.gather(
            agent_side(),
            *(asyncio.to_thread(_ws_client_run, url, "", f"c{n}", rounds) for n in range(clients)),
        )
    finally:
        agent.close()
    problems = [p for r in results for p in r]
    return {"clients": clients, "rounds": rounds, "agent_queries": agent_queries,
            "problems": problems[:10], "problem_count": len(problems), "seconds": time.monotonic() - t0}


def check_gateway_clients(fig: dict) -> None:
    assert fig["problem_count"] == 0, fig
