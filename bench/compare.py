#!/usr/bin/env python3
"""Side by side: our runner, the original runner (backend.ai-kernel 23.9.10) and raw jupyter_client.

    python bench/compare.py [--runs 5] [--rounds 200] [--only cold warm batch kernels] [--before REF]

Every figure of the performance issue, each run measuring ours, the original and the reference back
to back (load hits them alike), as min / median / max over `--runs` runs (docs/performance.md). The
original is installed from PyPI into a temporary venv (`--keep-venv DIR` keeps it) and started as
the agent starts it, `python -m ai.backend.kernel python <runtime>`, under `unshare -m` with
temporary dirs over its fixed /home and /tmp and its ports in /home/config/intrinsic-ports.json.
Both runners get raw ZeroMQ frames as from the agent (docs/protocol.md). Needs root for the
namespace; without it the original's column is skipped.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgpack
import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.batch import CMD as BATCH_CMD, SIZE as BATCH_SIZE, pipe_run  # noqa: E402
from bench.query import OUTPUT_CODE, OUTPUT_MB, drain_iopub, raw_query  # noqa: E402
from tests.runnerlib import RunnerProcess, free_port  # noqa: E402

ORIGINAL = "backend.ai-kernel==23.9.10"
COMPLETE_PAYLOAD = {"code": "import os\nos.pa", "post": ""}
LOADS: list[float] = []


def load() -> float:
    value = os.getloadavg()[0]
    LOADS.append(value)
    return value


class Agent:
    """The agent's two sockets, nothing else: send an op, read frames."""

    def __init__(self, replin: int, replout: int) -> None:
        self.ctx = zmq.asyncio.Context()
        self.push, self.pull = self.ctx.socket(zmq.PUSH), self.ctx.socket(zmq.PULL)
        self.push.linger = self.pull.linger = 0
        self.push.connect(f"tcp://127.0.0.1:{replin}")
        self.pull.connect(f"tcp://127.0.0.1:{replout}")
        self.max_frame = 0
        self.frames = 0

    async def send(self, op: str, text: str = "") -> None:
        await self.push.send_multipart([op.encode(), text.encode()])

    async def until(self, last: bytes, timeout: float = 120) -> tuple[int, bytes]:
        """Read until a `last` frame; (stdout bytes seen, last payload)."""
        received = 0
        async with asyncio.timeout(timeout):
            while True:
                op, payload = await self.pull.recv_multipart()
                if op == last:
                    return received, payload
                if op == b"stdout":
                    self.frames += 1
                    received += len(payload)
                    self.max_frame = max(self.max_frame, len(payload))

    async def status(self, timeout: float = 30) -> dict:
        await self.send("status")
        return msgpack.unpackb((await self.until(b"status", timeout))[1])

    async def query(self, code: str) -> int:
        await self.send("code", code)
        received, payload = await self.until(b"finished")
        assert json.loads(payload)["exitCode"] == 0, payload
        return received

    async def batch(self, cmd: str) -> int:
        self.frames = 0
        for op, text in (("clean", ""), ("build", ""), ("exec", cmd)):
            await self.send(op, text)
        received, payload = await self.until(b"finished")
        assert json.loads(payload)["exitCode"] == 0, payload
        return received

    async def complete(self, payload: dict, timeout: float) -> list[str] | None:
        await self.send("complete", json.dumps(payload))
        try:
            _, reply = await self.until(b"completion", timeout)
        except TimeoutError:
            return None
        return json.loads(reply).get("suggestions", [])

    def close(self) -> None:
        self.push.close()
        self.pull.close()
        self.ctx.term()


class Launched:
    """A runner process (ours or the original), its agent sockets and its kernel's connection file."""

    def __init__(self, kind: str, proc: subprocess.Popen, agent: Agent, runtime_dir: Path,
                 t0: float, tmp: Path) -> None:
        self.kind, self.proc, self.agent, self.runtime_dir, self.t0, self.tmp = kind, proc, agent, runtime_dir, t0, tmp

    async def raw_client(self) -> AsyncKernelClient:
        """A raw jupyter_client on the runner's own kernel (the reference on the same ipykernel)."""
        deadline = time.monotonic() + 30
        pattern = "tmp*.json" if self.kind == "orig" else "kernel-*.json"  # the original: a mkstemp name
        while not (files := sorted(self.runtime_dir.glob(pattern))):
            assert time.monotonic() < deadline, f"{self.kind}: no connection file in {self.runtime_dir}"
            await asyncio.sleep(0.05)
        kc = AsyncKernelClient()
        kc.load_connection_file(str(files[0]))
        kc.start_channels(hb=False)
        await kc.wait_for_ready(timeout=30)
        return kc

    async def stop(self) -> None:
        self.agent.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                await asyncio.to_thread(self.proc.wait, 15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        try:  # leftovers of the runner's process group (kernels it did not stop)
            os.killpg(self.proc.pid, 9)
        except ProcessLookupError:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "IPYTHON"))}
    env.update(HOME=str(home), JUPYTER_PLATFORM_DIRS="1")
    return env


def launch_ours(repo: Path = REPO, kind: str = "ours") -> Launched:
    tmp = Path(tempfile.mkdtemp(prefix=f"krb-compare-{kind}-"))
    dirs = {name: tmp / name for name in ("work", "config", "runtime", "home")}
    for path in dirs.values():
        path.mkdir()
    runner = RunnerProcess("python", dirs, debug=False)
    runner._isolate_intrinsic_ports()
    env = _env(dirs["home"])
    env.update(JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
               PYTHONPATH=os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])))
    log = open(tmp / "runner.log", "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(runner.argv, cwd=str(repo), env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    return Launched(kind, proc, Agent(runner.replin_port, runner.replout_port), dirs["runtime"], t0, tmp)


def launch_original(python: str) -> Launched:
    tmp = Path(tempfile.mkdtemp(prefix="krb-compare-orig-", dir="/var/tmp"))
    for sub in ("home/work", "home/config", "tmp", "runtime"):
        (tmp / sub).mkdir(parents=True)
    ports = {name: free_port() for name in ("replin", "replout", "sshd", "ttyd")}
    (tmp / "home/config/intrinsic-ports.json").write_text(json.dumps(ports))
    env = _env(tmp / "home/work")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp / "runtime")
    env.pop("PYTHONPATH", None)
    script = 'mount --bind "$1/home" /home && mount --bind "$1/tmp" /tmp && exec "$2" -m ai.backend.kernel python "$2"'
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(tmp), python]
    log = open(tmp / "runner.log", "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd="/", env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    return Launched("orig", proc, Agent(ports["replin"], ports["replout"]), tmp / "tmp", t0, tmp)


def install_original(venv: Path) -> str:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing {ORIGINAL} into {venv} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", ORIGINAL, "ipykernel"], check=True,
                       stdout=subprocess.DEVNULL)
    return str(python)


# ---- figures -----------------------------------------------------------------------------------

async def cold_start(launcher: Callable[[], Launched], complete: bool) -> dict[str, float]:
    """Launch → status; launch → first query result; then the first completion (seconds)."""
    runner = launcher()
    try:
        agent = runner.agent
        await agent.status()
        t_status = time.perf_counter() - runner.t0
        await agent.query("print('hello')")
        t_query = time.perf_counter() - runner.t0
        out = {"status": t_status, "first_query": t_query}
        if complete:
            t1 = time.perf_counter()
            matches = await agent.complete(COMPLETE_PAYLOAD, timeout=10)
            good = matches is not None and any("path" in m for m in matches)
            out["first_complete"] = time.perf_counter() - t1 if good else float("inf")
        return out
    finally:
        await runner.stop()


async def warm_figures(runner: Launched, rounds: int, output_rounds: int) -> dict[str, float]:
    """`pass` p50 and 20 MB output, runner vs raw jupyter_client on its kernel, interleaved."""
    agent = runner.agent
    await agent.query("pass")
    kc = await runner.raw_client()
    try:
        for _ in range(20):
            await agent.query("pass")
            await raw_query(kc, "pass")
        ours, ref = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            await agent.query("pass")
            t1 = time.perf_counter()
            await raw_query(kc, "pass")
            ours.append(t1 - t0)
            ref.append(time.perf_counter() - t1)
        rate_ours, rate_ref = [], []
        for i in range(output_rounds):
            # alternated (a fresh kernel's first 20 MB is its slowest), each side after the raw
            # client has dropped what is not its own (bench/query.drain_iopub)
            for side in (("ours", "ref") if i % 2 == 0 else ("ref", "ours")):
                await drain_iopub(kc)
                t0 = time.perf_counter()
                n = await (agent.query(OUTPUT_CODE) if side == "ours" else raw_query(kc, OUTPUT_CODE))
                rate = 1 / (time.perf_counter() - t0)
                assert n == OUTPUT_MB * 2**20, (runner.kind, side, n)
                (rate_ours if side == "ours" else rate_ref).append(rate)
    finally:
        kc.stop_channels()
    return {"pass_ratio": statistics.median(ours) / statistics.median(ref),
            "pass_p50_ms": statistics.median(ours) * 1000,
            "output_ratio": statistics.median(rate_ours) / statistics.median(rate_ref)}


async def batch_figure(runner: Launched, rounds: int) -> list[float]:
    ratios = []
    for _ in range(rounds):
        pipe = await asyncio.to_thread(pipe_run)
        t0 = time.perf_counter()
        received = await runner.agent.batch(BATCH_CMD)
        wire = time.perf_counter() - t0
        assert received == BATCH_SIZE, (runner.kind, received)
        print(f"  batch {runner.kind}: {runner.agent.frames} frames, {pipe / wire:.2f}x pipe", file=sys.stderr)
        ratios.append(pipe / wire)
    return ratios


def kernel_figures(cells: int) -> dict[str, float]:
    """Our kernelspecs for bash, R, octave: start (s) and trivial cell (ms), via jupyter_client."""
    from bench.kernels import LANGS, isolate, measure

    saved = dict(os.environ)
    tmp = isolate()
    out: dict[str, float] = {}
    try:
        for name in ("shell", "r", "octave"):
            if shutil.which(LANGS[name][0]) is None:
                continue
            start, cell = measure(name, LANGS[name][1], 1, cells)
            out[f"{name}_start"], out[f"{name}_cell"] = start, cell * 1000
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# ---- the run -----------------------------------------------------------------------------------

FIGURES = [  # key, label, unit, target
    ("pass_ratio", "`pass` round trip p50 vs raw jupyter_client", "×", "≤ 1.05"),
    ("output_ratio", "20 MB query output vs raw jupyter_client", "×", "≥ 1.0"),
    ("batch_ratio", "50 MB batch exec output vs a pipe", "×", "≥ 0.8 (worst ≥ 0.6)"),
    ("first_complete", "first completion after start", "s", "≤ 0.5"),
    ("status", "runner answers `status` after launch", "s", "≤ 0.3"),
    ("first_query", "first query result after launch (python)", "s", "≤ 0.6"),
    ("shell_start", "bash kernel start", "s", "≤ 1"),
    ("shell_cell", "bash kernel trivial cell", "ms", "≤ 10"),
    ("r_cell", "IRkernel trivial cell", "ms", "≤ 10"),
    ("octave_cell", "octave kernel trivial cell", "ms", "≤ 10"),
]


def fmt(values: list[float], unit: str) -> str:
    if not values:
        return "—"
    if all(v == float("inf") for v in values):
        return "never answers"
    nd = 1 if unit == "ms" else 2
    lo, med, hi = min(values), statistics.median(values), max(values)
    show = (lambda v: "∞" if v == float("inf") else f"{v:.{nd}f}")
    return f"{show(lo)} / **{show(med)}** / {show(hi)} {unit}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=200, help="`pass` round trips per run")
    parser.add_argument("--output-rounds", type=int, default=4, help="20 MB outputs per run and side")
    parser.add_argument("--batch-rounds", type=int, default=1, help="50 MB batch runs per run")
    parser.add_argument("--cells", type=int, default=10, help="trivial cells per kernel per run")
    parser.add_argument("--keep-venv", type=Path, help="where to keep (and reuse) the original's venv")
    parser.add_argument("--no-original", action="store_true")
    parser.add_argument("--before", metavar="GIT_REF",
                        help="also run our runner as of GIT_REF (a `before` column, to measure a change)")
    parser.add_argument("--only", nargs="*", choices=["cold", "warm", "batch", "kernels"],
                        default=["cold", "warm", "batch", "kernels"])
    args = parser.parse_args()
    venv_tmp = None
    python = None
    if not args.no_original and os.geteuid() == 0 and shutil.which("unshare"):
        venv = args.keep_venv or Path(tempfile.mkdtemp(prefix="krb-orig-venv-", dir="/var/tmp"))
        venv_tmp = None if args.keep_venv else venv
        python = install_original(venv / "venv" if venv_tmp else venv)
    launchers: dict[str, Callable[[], Launched]] = {"ours": launch_ours}
    before_tmp = None
    if args.before:
        before_tmp = Path(tempfile.mkdtemp(prefix="krb-compare-before-"))
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.before], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before_tmp)], input=archive, check=True)
        launchers["before"] = lambda: launch_ours(before_tmp, "before")
    if python:
        launchers["orig"] = lambda: launch_original(python)
    results: dict[str, dict[str, list[float]]] = {k: {} for k in launchers}

    def add(kind: str, key: str, value: float) -> None:
        results[kind].setdefault(key, []).append(value)

    try:
        for run in range(args.runs):
            print(f"run {run + 1}/{args.runs}, load {load():.2f}", file=sys.stderr, flush=True)
            if "cold" in args.only:
                for kind, launcher in launchers.items():
                    for key, value in (await cold_start(launcher, complete=True)).items():
                        add(kind, key, value)
            if "warm" in args.only or "batch" in args.only:
                for kind, launcher in launchers.items():
                    runner = launcher()
                    try:
                        await runner.agent.status()
                        if "warm" in args.only:
                            for key, value in (await warm_figures(runner, args.rounds, args.output_rounds)).items():
                                add(kind, key, value)
                        if "batch" in args.only:
                            await runner.agent.batch(BATCH_CMD)  # warm-up
                            for ratio in await batch_figure(runner, args.batch_rounds):
                                add(kind, "batch_ratio", ratio)
                            add(kind, "max_frame", runner.agent.max_frame)
                    finally:
                        await runner.stop()
            if "kernels" in args.only:
                for key, value in (await asyncio.to_thread(kernel_figures, args.cells)).items():
                    add("ours", key, value)
            print(f"  {json.dumps(results)}", file=sys.stderr, flush=True)
    finally:
        for path in (venv_tmp, before_tmp):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
    load()
    print(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.runs} runs "
          f"({args.rounds} `pass` rounds, {args.output_rounds} × {OUTPUT_MB} MB, 1 × 50 MB batch per run), "
          f"load average {min(LOADS):.2f}–{max(LOADS):.2f}; min / **median** / max\n")
    columns = [k for k in ("before", "ours", "orig") if k in results]
    names = {"before": f"ours at {args.before}", "ours": "ours", "orig": "original runner (23.9.10)"}
    print(f"| figure | {' | '.join(names[k] for k in columns)} | target |")
    print(f"| --- |{' --- |' * len(columns)} --- |")
    for key, label, unit, target in FIGURES:
        if not any(results[k].get(key) for k in columns):
            continue
        cells = " | ".join(fmt(results[k].get(key, []), unit) for k in columns)
        print(f"| {label} | {cells} | {target} |")
    frames = {k: max(v.get("max_frame", [0])) for k, v in results.items()}
    print(f"\nlargest batch frame: {frames}; `pass` p50 ms: "
          f"{ {k: [round(x, 2) for x in v.get('pass_p50_ms', [])] for k, v in results.items()} }")


if __name__ == "__main__":
    asyncio.run(main())
