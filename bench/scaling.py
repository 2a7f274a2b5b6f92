#!/usr/bin/env python3
"""How cost grows with output size and with the number of kernels (docs/performance.md).

    python bench/scaling.py [--sizes 1M,100M,1G] [--runs 3] [--kernels 1,2,4,8] [--quick]

Each figure has a reference measured in the same run, interleaved with ours:
  * query: a Python cell printing N bytes, read as `stdout` frames by a raw-ZeroMQ agent, against
    raw jupyter_client reading the same cell's iopub stream from the runner's own ipykernel;
  * batch: `exec` of a command writing N bytes, against the same command into a pipe read here;
  * kernels: k kernels started by POST /api/kernels on the runner's gateway, against k kernels
    started by jupyter_client's AsyncMultiKernelManager in a separate Python process.
The runner's peak RSS is its VmHWM (reset through /proc/<pid>/clear_refs before each measurement
when allowed) and the largest VmRSS sampled every 20 ms. 1 MB = 10^6 bytes. Only loopback is used;
every process started here is stopped at the end (by pid or by a process group it owns).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from jupyter_client.asynchronous import AsyncKernelClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.compare import Agent  # noqa: E402
from bench.query import raw_query  # noqa: E402
from tests.runnerlib import RunnerProcess, free_port  # noqa: E402

TOKEN = "scaling-bench"
UNITS = {"K": 10**3, "M": 10**6, "G": 10**9}


# ---------------------------------------------------------------- /proc helpers
def proc_field(pid: int, name: str, file: str = "status") -> int:
    """A `Name:  N kB` field of /proc/<pid>/status or smaps_rollup, in bytes (0 if gone)."""
    try:
        with open(f"/proc/{pid}/{file}") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(pid: int, kids: dict[int, list[int]] | None = None) -> list[int]:
    """pid and all its descendants."""
    kids = children_map() if kids is None else kids
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_mem(pid: int, kids: dict[int, list[int]]) -> tuple[int, int]:
    """(RSS, PSS) summed over a process tree."""
    pids = tree(pid, kids)
    return sum(proc_field(p, "VmRSS") for p in pids), sum(proc_field(p, "Pss", "smaps_rollup") for p in pids)


class PeakRss:
    """Peak RSS of one process during a `with` block: VmHWM after a reset, and sampled VmRSS."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRss:
        try:  # "5" resets the peak RSS counter (proc(5), clear_refs)
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, proc_field(self.pid, "VmRSS"))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, proc_field(self.pid, "VmHWM"), proc_field(self.pid, "VmRSS"))


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------- runners
class Runner(RunnerProcess):
    """A RunnerProcess in its own session, so leftovers can be killed by its process group."""

    async def start(self) -> None:
        self._isolate_intrinsic_ports()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.pop("KRUNNER_GATEWAY_TOKEN", None)
        self.log_file = open(self.log_path, "wb")
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, cwd=str(REPO), env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=self.log_file, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        self.kernel_groups: set[int] = set()
        await self.wait_status(timeout=60)

    def note_kernels(self) -> None:
        """Remember the runner's children (kernels run in their own sessions) for the cleanup."""
        assert self.proc is not None
        self.kernel_groups.update(children_map().get(self.proc.pid, []))

    async def close(self) -> None:
        assert self.proc is not None
        self.note_kernels()
        try:
            await self.stop(timeout=20)
        except AssertionError as exc:
            print(f"warning: {str(exc).splitlines()[0]}", file=sys.stderr)
        finally:
            for pgid in [*self.kernel_groups, self.proc.pid]:
                kill_group(pgid)


def make_dirs(root: Path, name: str) -> dict[str, Path]:
    dirs = {k: root / name / k for k in ("work", "config", "runtime")}
    for d in dirs.values():
        d.mkdir(parents=True)
    return dirs


def query_code(size: int) -> str:
    return f"import sys\nw = sys.stdout.write\nline = 'x' * 999 + '\\n'\nfor _ in range({size // 1000}): w(line)\n"


def batch_cmd(size: int) -> str:
    return f"head -c {size} /dev/zero | tr '\\0' x"


def timeout_for(size: int, per_mb: float) -> float:
    return 120 + size / 1e6 * per_mb


# ---------------------------------------------------------------- throughput
async def bench_query(root: Path, sizes: list[int], runs: int, per_mb: float, out: dict) -> None:
    runner = Runner("python", make_dirs(root, "query"), debug=False)
    await runner.start()
    assert runner.proc is not None
    agent = Agent(runner.replin_port, runner.replout_port)
    kc = None
    try:
        await agent.query("pass")
        (conn,) = runner.dirs["runtime"].glob("kernel-*.json")
        kc = AsyncKernelClient()
        kc.load_connection_file(str(conn))
        kc.start_channels(hb=False)
        await kc.wait_for_ready(timeout=60)
        for run in range(runs):
            for size in sizes:
                code = query_code(size)
                with PeakRss(runner.proc.pid) as peak:
                    t0 = time.perf_counter()
                    await agent.send("code", code)
                    got, payload = await agent.until(b"finished", timeout_for(size, per_mb))
                    t1 = time.perf_counter()
                assert json.loads(payload)["exitCode"] == 0 and got == size, (got, payload[:200])
                t2 = time.perf_counter()
                async with asyncio.timeout(timeout_for(size, per_mb)):
                    ref = await raw_query(kc, code)
                t3 = time.perf_counter()
                assert ref == size, ref
                rec(out, "query", size, size / 1e6 / (t1 - t0), size / 1e6 / (t3 - t2), peak.peak)
                progress(f"query run {run + 1} {fmt_size(size)}: {size / 1e6 / (t1 - t0):.1f} MB/s vs "
                         f"{size / 1e6 / (t3 - t2):.1f}, runner peak {peak.peak / 1e6:.0f} MB")
    finally:
        if kc is not None:
            kc.stop_channels()
        agent.close()
        await runner.close()


async def bench_batch(root: Path, sizes: list[int], runs: int, per_mb: float, out: dict) -> None:
    runner = Runner("python", make_dirs(root, "batch"), extra_args=["--kernel-name", "none"], debug=False)
    await runner.start()
    assert runner.proc is not None
    agent = Agent(runner.replin_port, runner.replout_port)
    try:
        await agent.batch("true")
        for run in range(runs):
            for size in sizes:
                cmd = batch_cmd(size)
                with PeakRss(runner.proc.pid) as peak:
                    t0 = time.perf_counter()
                    for op, text in (("clean", ""), ("build", ""), ("exec", cmd)):
                        await agent.send(op, text)
                    got, payload = await agent.until(b"finished", timeout_for(size, per_mb))
                    t1 = time.perf_counter()
                assert json.loads(payload)["exitCode"] == 0 and got == size, (got, payload[:200])
                pipe = await asyncio.to_thread(pipe_read, cmd, size)
                rec(out, "batch", size, size / 1e6 / (t1 - t0), size / 1e6 / pipe, peak.peak)
                progress(f"batch run {run + 1} {fmt_size(size)}: {size / 1e6 / (t1 - t0):.1f} MB/s vs "
                         f"{size / 1e6 / pipe:.1f}, runner peak {peak.peak / 1e6:.0f} MB")
    finally:
        agent.close()
        await runner.close()


def pipe_read(cmd: str, size: int) -> float:
    """The reference: the same command into a pipe read here with 1 MiB reads."""
    start = time.perf_counter()
    proc = subprocess.Popen(["/bin/sh", "-c", cmd], stdout=subprocess.PIPE, bufsize=0, start_new_session=True)
    assert proc.stdout is not None
    received = 0
    try:
        while chunk := proc.stdout.read(1 << 20):
            received += len(chunk)
        proc.wait(60)
    finally:
        kill_group(proc.pid)
        proc.stdout.close()
    assert received == size, received
    return time.perf_counter() - start


def rec(out: dict, path: str, size: int, ours: float, ref: float, peak: int) -> None:
    row = out.setdefault((path, size), {"ours": [], "ref": [], "ratio": [], "peak": []})
    row["ours"].append(ours)
    row["ref"].append(ref)
    row["ratio"].append(ours / ref)
    row["peak"].append(peak / 1e6)


# ---------------------------------------------------------------- kernels
def wait_kernel(conn: Path, timeout: float) -> None:
    """Block until a kernel answers kernel_info through its connection file (it is fully started)."""
    from jupyter_client import BlockingKernelClient

    deadline = time.monotonic() + timeout
    while not conn.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no connection file {conn}")
        time.sleep(0.05)
    kc = BlockingKernelClient(connection_file=str(conn))
    kc.load_connection_file()
    kc.start_channels(hb=False)
    try:
        kc.wait_for_ready(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        kc.stop_channels()


def settle() -> None:
    time.sleep(1.0)  # let freshly started kernels finish their imports and the allocator settle


def measure_k(manager_pid: int, runtime: Path, start_k, stop_all, k: int, spec: str) -> dict:
    """Start k kernels with `start_k`, return the manager's growth and each kernel tree's memory."""
    settle()
    before = set(children_map().get(manager_pid, []))
    rss0, pss0 = proc_field(manager_pid, "VmRSS"), proc_field(manager_pid, "Pss", "smaps_rollup")
    ids = start_k(k)
    try:
        for kid in ids:
            wait_kernel(runtime / f"kernel-{kid}.json", 120)
        settle()
        kids = children_map()
        new = [p for p in kids.get(manager_pid, []) if p not in before]
        mems = [tree_mem(p, kids) for p in new]
        rss1, pss1 = proc_field(manager_pid, "VmRSS"), proc_field(manager_pid, "Pss", "smaps_rollup")
    finally:
        stop_all(ids)
    return {"rss_per_kernel": (rss1 - rss0) / k / 1e6, "pss_per_kernel": (pss1 - pss0) / k / 1e6,
            "kernel_rss": statistics.median(m[0] for m in mems) / 1e6 if mems else math.nan,
            "kernel_pss": statistics.median(m[1] for m in mems) / 1e6 if mems else math.nan,
            "kernels_seen": len(new)}


MKM_CHILD = r"""
import asyncio, json, os, sys
from jupyter_client.multikernelmanager import AsyncMultiKernelManager
async def main():
    km = AsyncMultiKernelManager(connection_dir=os.environ["JUPYTER_RUNTIME_DIR"])
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "start":
            ids = [await km.start_kernel(kernel_name=cmd["spec"]) for _ in range(cmd["k"])]
            print(json.dumps({"ids": ids}), flush=True)
        elif cmd["op"] == "stop":
            await km.shutdown_all(now=True)
            print(json.dumps({"stopped": True}), flush=True)
        else:
            break
asyncio.run(main())
"""


def bench_kernels(root: Path, counts: list[int], runs: int, spec: str, out: dict) -> None:
    asyncio.run(_runner_gateway_setup_and_measure(root, counts, runs, spec, out))


async def _runner_gateway_setup_and_measure(root: Path, counts: list[int], runs: int, spec: str, out: dict) -> None:
    port = free_port()
    dirs = make_dirs(root, "gateway")
    runner = Runner("python", dirs, extra_args=["--kernel-name", "none", "--gateway-port", str(port),
                                                "--gateway-token", TOKEN], debug=False)
    await runner.start()
    assert runner.proc is not None
    url, headers = f"http://127.0.0.1:{port}", {"Authorization": f"token {TOKEN}"}

    def gw_start(k: int) -> list[str]:
        ids = []
        for _ in range(k):
            r = requests.post(url + "/api/kernels", headers=headers, json={"name": spec}, timeout=120)
            r.raise_for_status()
            ids.append(r.json()["id"])
        runner.note_kernels()
        return ids

    def gw_stop(ids: list[str]) -> None:
        runner.note_kernels()
        for kid in ids:
            requests.delete(f"{url}/api/kernels/{kid}", headers=headers, timeout=60)

    mkm_runtime = root / "mkm-runtime"
    mkm_runtime.mkdir()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(mkm_runtime))
    child = subprocess.Popen([sys.executable, "-c", MKM_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env=env, stderr=subprocess.DEVNULL, start_new_session=True)
    mkm_groups: set[int] = set()

    def ask(cmd: dict) -> dict:
        assert child.stdin and child.stdout
        child.stdin.write(json.dumps(cmd) + "\n")
        child.stdin.flush()
        line = child.stdout.readline()
        if not line:
            raise RuntimeError("the AsyncMultiKernelManager process exited")
        return json.loads(line)

    def mkm_start(k: int) -> list[str]:
        ids = ask({"op": "start", "k": k, "spec": spec})["ids"]
        mkm_groups.update(children_map().get(child.pid, []))
        return ids

    try:
        assert child.stdout is not None and json.loads(child.stdout.readline())["ready"]
        # one kernel started and stopped on each side first: one-time imports are not per-kernel cost
        await asyncio.to_thread(measure_k, runner.proc.pid, dirs["runtime"], gw_start, gw_stop, 1, spec)
        await asyncio.to_thread(measure_k, child.pid, mkm_runtime, mkm_start, lambda ids: ask({"op": "stop"}), 1, spec)
        for run in range(runs):
            for k in counts:
                for side, pid, rt, start, stop in (
                        ("gateway", runner.proc.pid, dirs["runtime"], gw_start, gw_stop),
                        ("mkm", child.pid, mkm_runtime, mkm_start, lambda ids: ask({"op": "stop"}))):
                    m = await asyncio.to_thread(measure_k, pid, rt, start, stop, k, spec)
                    for key, value in m.items():
                        out.setdefault((side, k, key), []).append(value)
                    progress(f"kernels run {run + 1} k={k} {side}: manager +{m['rss_per_kernel']:.1f} MB RSS "
                             f"per kernel, kernel RSS {m['kernel_rss']:.1f} MB ({m['kernels_seen']} seen)")
    finally:
        try:
            if child.poll() is None:
                ask({"op": "stop"})
                assert child.stdin is not None
                child.stdin.close()  # the child's loop ends at EOF
                child.wait(20)
        except Exception:  # noqa: BLE001 - cleanup below kills whatever is left
            pass
        for pgid in [*mkm_groups, child.pid]:
            kill_group(pgid)
        await runner.close()


# ---------------------------------------------------------------- report
def fmt_size(size: int) -> str:
    for unit, mult in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if size >= mult and size % mult == 0:
            return f"{size // mult} {unit}B"
    return f"{size} B"


def mmm(values: list[float], digits: int = 1) -> str:
    return " / ".join(f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values)))


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


def report(through: dict, kernels: dict, counts: list[int]) -> None:
    print("| figure | min / median / max |")
    print("| --- | --- |")
    for (path, size), row in through.items():
        ref = "raw jupyter_client" if path == "query" else "a pipe"
        print(f"| {path} {fmt_size(size)}: ours MB/s | {mmm(row['ours'])} |")
        print(f"| {path} {fmt_size(size)}: {ref} MB/s | {mmm(row['ref'])} |")
        print(f"| {path} {fmt_size(size)}: ratio ours/reference | {mmm(row['ratio'], 2)} |")
        print(f"| {path} {fmt_size(size)}: runner peak RSS MB | {mmm(row['peak'])} |")
    for k in counts:
        g = {key: kernels[("gateway", k, key)] for key in ("rss_per_kernel", "pss_per_kernel", "kernel_rss", "kernel_pss")}
        m = {key: kernels[("mkm", k, key)] for key in ("rss_per_kernel", "pss_per_kernel", "kernel_rss", "kernel_pss")}
        over = [a - b for a, b in zip(g["rss_per_kernel"], m["rss_per_kernel"])]
        print(f"| kernels k={k}: runner RSS growth per kernel MB | {mmm(g['rss_per_kernel'])} |")
        print(f"| kernels k={k}: runner PSS growth per kernel MB | {mmm(g['pss_per_kernel'])} |")
        print(f"| kernels k={k}: AsyncMultiKernelManager RSS growth per kernel MB | {mmm(m['rss_per_kernel'])} |")
        print(f"| kernels k={k}: runner overhead per kernel (difference) MB | {mmm(over)} |")
        print(f"| kernels k={k}: kernel tree RSS each, gateway / jupyter_client MB | "
              f"{mmm(g['kernel_rss'])} vs {mmm(m['kernel_rss'])} |")
        print(f"| kernels k={k}: kernel tree PSS each, gateway / jupyter_client MB | "
              f"{mmm(g['kernel_pss'])} vs {mmm(m['kernel_pss'])} |")


def parse_sizes(text: str) -> list[int]:
    sizes = []
    for item in filter(None, text.replace(" ", "").upper().split(",")):
        item = item.removesuffix("B")
        size = int(float(item[:-1]) * UNITS[item[-1]]) if item[-1] in UNITS else int(item)
        if size <= 0 or size % 1000:
            raise argparse.ArgumentTypeError(f"size {item!r}: must be a positive multiple of 1000 bytes")
        sizes.append(size)
    return sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=parse_sizes, default=None, help="output sizes (default 1M,100M,1G)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kernels", default=None, help="kernel counts (default 1,2,4,8)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1M,4M, 1 run, kernels 1,2")
    ap.add_argument("--only", nargs="+", choices=("query", "batch", "kernels"), default=["query", "batch", "kernels"])
    ap.add_argument("--kernel-spec", default="python3", help="kernelspec for the kernel-count figures")
    ap.add_argument("--seconds-per-mb", type=float, default=2.0, help="timeout per transfer: 120 s + this per MB")
    args = ap.parse_args()
    sizes = args.sizes or ([10**6, 4 * 10**6] if args.quick else [10**6, 10**8, 10**9])
    counts = [int(c) for c in (args.kernels or ("1,2" if args.quick else "1,2,4,8")).split(",") if c]
    runs = 1 if args.quick and args.runs == 3 else args.runs
    if runs < 1 or not counts or min(counts) < 1:
        ap.error("--runs and --kernels must be positive")
    load_start = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    through: dict = {}
    kernels: dict = {}
    with tempfile.TemporaryDirectory(prefix="krunner-scaling-") as tmp:
        root = Path(tmp)
        os.environ.update({"HOME": str(root), "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
                           "JUPYTER_DATA_DIR": str(root / "data"), "IPYTHONDIR": str(root / "ipython")})
        if "query" in args.only:
            asyncio.run(bench_query(root, sizes, runs, args.seconds_per_mb, through))
        if "batch" in args.only:
            asyncio.run(bench_batch(root, sizes, runs, args.seconds_per_mb, through))
        if "kernels" in args.only:
            bench_kernels(root, counts, runs, args.kernel_spec, kernels)
    print(f"{started}, {runs} run(s); sizes {', '.join(map(fmt_size, sizes))}; kernels {counts}")
    print("load average at start: " + " ".join(f"{x:.2f}" for x in load_start))
    report(through, kernels, counts if "kernels" in args.only else [])
    print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
