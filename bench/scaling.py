#!/usr/bin/env python3
"""How cost grows with output size and with the number of kernels (docs/performance.md#how-cost-grows).

    python bench/scaling.py [--sizes 1M,100M,1G] [--runs 3] [--kernels 1,2,4,8] [--quick]

Each figure against a reference in the same run, interleaved: query output (a raw-ZeroMQ agent)
vs raw jupyter_client on the runner's own ipykernel; batch `exec` output vs a pipe read here;
kernels started through the runner's gateway vs AsyncMultiKernelManager in another process.
Runner peak RSS = VmHWM (reset through clear_refs) or VmRSS sampled every 20 ms. 1 MB = 10^6 B.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import requests
from jupyter_client import BlockingKernelClient
from jupyter_client.asynchronous import AsyncKernelClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.compare import Agent  # noqa: E402
from bench.query import drain_iopub, raw_query  # noqa: E402
from tests.runnerlib import RunnerProcess, free_port  # noqa: E402

TOKEN = "scaling-bench"
QUERY_CODE = "import sys\nw = sys.stdout.write\nline = 'x' * 999 + '\\n'\nfor _ in range({n}): w(line)\n"
BATCH_CMD = "head -c {size} /dev/zero | tr '\\0' x"


def proc_field(pid: int, name: str, file: str = "status") -> int:
    """A `Name:  N kB` field of /proc/<pid>/status or smaps_rollup, in bytes (0 if gone)."""
    try:
        match = re.search(rf"^{name}:\s+(\d+) kB", Path(f"/proc/{pid}/{file}").read_text(), re.M)
    except OSError:
        return 0
    return int(match[1]) * 1024 if match else 0


def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(entry))
        except (OSError, IndexError):
            pass
    return kids


def tree_mem(pid: int, kids: dict[int, list[int]]) -> tuple[int, int]:
    """(RSS, PSS) summed over a process and its descendants."""
    pids, todo = [], [pid]
    while todo:
        pids.append(todo.pop())
        todo.extend(kids.get(pids[-1], []))
    return sum(proc_field(p, "VmRSS") for p in pids), sum(proc_field(p, "Pss", "smaps_rollup") for p in pids)


@contextlib.contextmanager
def peak_rss(pid: int, interval: float = 0.02) -> Iterator[list[int]]:
    """Peak RSS of one process during a `with` block: VmHWM after a reset, and sampled VmRSS."""
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            peak[0] = max(peak[0], proc_field(pid, "VmRSS"))

    with contextlib.suppress(OSError):  # "5" resets the peak RSS counter (proc(5), clear_refs)
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], proc_field(pid, "VmHWM"), proc_field(pid, "VmRSS"))


OWNED_GROUPS: set[int] = set()  # process groups led by processes started here (runners, kernels)


def kill_owned(marker: str) -> None:
    """SIGKILL our leftover process groups whose leader mentions `marker` (never a reused pid)."""
    for pgid in OWNED_GROUPS:
        try:
            seen = Path(f"/proc/{pgid}/cmdline").read_bytes() + Path(f"/proc/{pgid}/environ").read_bytes()
            if marker.encode() in seen:
                os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass


class Runner(RunnerProcess):
    """A RunnerProcess in its own session (its process group is ours to clean up)."""

    async def start(self) -> None:
        self._isolate_intrinsic_ports()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        env.pop("KRUNNER_GATEWAY_TOKEN", None)
        self.log_file = open(self.log_path, "wb")
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, cwd=str(REPO), env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=self.log_file, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        OWNED_GROUPS.add(self.proc.pid)
        await self.wait_status(timeout=60)

    async def close(self) -> None:
        assert self.proc is not None
        OWNED_GROUPS.update(children_map().get(self.proc.pid, []))  # kernels lead their own groups
        with contextlib.suppress(AssertionError):  # stop() killed it after 20 s; kill_owned() does the rest
            await self.stop(timeout=20)


def make_dirs(root: Path, name: str) -> dict[str, Path]:
    dirs = {k: root / name / k for k in ("work", "config", "runtime")}
    for d in dirs.values():
        d.mkdir(parents=True)
    return dirs


async def throughput(root: Path, path: str, sizes: list[int], runs: int, per_mb: float, out: dict) -> None:
    """Ours then the reference for each size, run after run; the runner's peak RSS during ours."""
    extra = ["--kernel-name", "none"] if path == "batch" else []
    runner = Runner("python", make_dirs(root, path), extra_args=extra, debug=False)
    await runner.start()
    assert runner.proc is not None
    agent = Agent(runner.replin_port, runner.replout_port)
    kc = AsyncKernelClient()
    try:
        if path == "query":
            await agent.query("pass")
            (conn,) = runner.dirs["runtime"].glob("kernel-*.json")
            kc.load_connection_file(str(conn))
            kc.start_channels(hb=False)
            await kc.wait_for_ready(timeout=60)
        else:
            await agent.batch("true")
        for run in range(runs):
            for size in sizes:
                work = QUERY_CODE.format(n=size // 1000) if path == "query" else BATCH_CMD.format(size=size)
                timeout = 120 + size / 1e6 * per_mb
                ops = [("code", work)] if path == "query" else [("clean", ""), ("build", ""), ("exec", work)]
                with peak_rss(runner.proc.pid) as peak:
                    t0 = time.perf_counter()
                    for op, text in ops:
                        await agent.send(op, text)
                    got, payload = await agent.until(b"finished", timeout)
                    ours = time.perf_counter() - t0
                assert json.loads(payload)["exitCode"] == 0 and got == size, (got, payload[:200])
                if path == "query":
                    await drain_iopub(kc)  # not charged for our output (bench/query.drain_iopub)
                t0 = time.perf_counter()
                if path == "query":
                    async with asyncio.timeout(timeout):
                        assert await raw_query(kc, work) == size
                else:
                    await asyncio.to_thread(pipe_read, work, size)
                ref = time.perf_counter() - t0
                row = out.setdefault((path, size), {"ours": [], "ref": [], "ratio": [], "peak": []})
                for key, value in (("ours", size / 1e6 / ours), ("ref", size / 1e6 / ref),
                                   ("ratio", ref / ours), ("peak", peak[0] / 1e6)):
                    row[key].append(value)
                progress(f"{path} run {run + 1} {fmt_size(size)}: {size / 1e6 / ours:.1f} MB/s vs "
                         f"{size / 1e6 / ref:.1f}, runner peak {peak[0] / 1e6:.0f} MB")
    finally:
        kc.stop_channels()
        agent.close()
        await runner.close()


def pipe_read(cmd: str, size: int) -> None:
    """The batch reference: the same command into a pipe read here with 1 MiB reads."""
    proc = subprocess.Popen(["/bin/sh", "-c", cmd], stdout=subprocess.PIPE, bufsize=0, start_new_session=True)
    try:
        received = sum(map(len, iter(lambda: proc.stdout.read(1 << 20), b"")))  # type: ignore[union-attr]
        proc.wait(60)
    finally:
        if proc.poll() is None:  # not reaped yet: its pid, and so its group, is still ours
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
    assert received == size, received


def wait_kernel(conn: Path, timeout: float) -> None:
    """Block until a kernel answers kernel_info through its connection file (it is fully started)."""
    kc = BlockingKernelClient(connection_file=str(conn))  # written before its manager's start returned
    kc.load_connection_file()
    kc.start_channels(hb=False)
    try:
        kc.wait_for_ready(timeout=timeout)
    finally:
        kc.stop_channels()


MKM_CHILD = r"""
import asyncio, json, os, sys
from jupyter_client.multikernelmanager import AsyncMultiKernelManager
async def main():
    km = AsyncMultiKernelManager(connection_dir=os.environ["JUPYTER_RUNTIME_DIR"])
    print("[]", flush=True)
    for line in sys.stdin:  # "k spec": start k kernels; "stop": shut all down; EOF: exit
        if line.startswith("stop"):
            await km.shutdown_all(now=True)
            print("[]", flush=True)
        else:
            k, spec = line.split()
            print(json.dumps([await km.start_kernel(kernel_name=spec) for _ in range(int(k))]), flush=True)
asyncio.run(main())
"""


class Managers:
    """The two kernel managers side by side: the runner's gateway and an AsyncMultiKernelManager."""

    def __init__(self, root: Path, spec: str) -> None:
        self.spec, port, self.dirs = spec, free_port(), make_dirs(root, "gateway")
        self.url, self.headers = f"http://127.0.0.1:{port}", {"Authorization": f"token {TOKEN}"}
        self.runner = Runner("python", self.dirs, debug=False, extra_args=[
            "--kernel-name", "none", "--gateway-port", str(port), "--gateway-token", TOKEN])
        self.mkm_runtime = make_dirs(root, "mkm")["runtime"]
        self.child: subprocess.Popen | None = None

    async def open(self) -> None:
        await self.runner.start()
        env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(self.mkm_runtime))
        self.child = subprocess.Popen([sys.executable, "-c", MKM_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True, env=env, start_new_session=True)
        OWNED_GROUPS.add(self.child.pid)
        self.ask("")
        gateway_pid = self.runner.proc.pid  # type: ignore[union-attr]
        self.sides = {"gateway": (gateway_pid, self.dirs["runtime"]), "mkm": (self.child.pid, self.mkm_runtime)}

    def ask(self, line: str) -> list[str]:
        assert self.child and self.child.stdin and self.child.stdout
        if line:
            self.child.stdin.write(line + "\n")
            self.child.stdin.flush()
        if not (answer := self.child.stdout.readline()):
            raise RuntimeError("the AsyncMultiKernelManager process exited")
        return json.loads(answer)

    def start(self, name: str, k: int) -> list[str]:
        if name == "mkm":
            return self.ask(f"{k} {self.spec}")
        posts = [requests.post(self.url + "/api/kernels", headers=self.headers, json={"name": self.spec}, timeout=120)
                 for _ in range(k)]
        return [reply.raise_for_status() or reply.json()["id"] for reply in posts]

    def stop(self, name: str, ids: list[str]) -> None:
        if name == "mkm":
            self.ask("stop")
        for kid in ids if name == "gateway" else []:
            requests.delete(f"{self.url}/api/kernels/{kid}", headers=self.headers, timeout=60)

    async def close(self) -> None:
        if self.child is not None and self.child.stdin is not None:
            with contextlib.suppress(Exception):  # kill_owned() takes whatever is left
                self.ask("stop")
                self.child.stdin.close()  # the child's loop ends at EOF
                self.child.wait(20)
        await self.runner.close()


def grow(managers: Managers, name: str, counts: list[int], out: dict, run: int) -> None:
    """Add kernels up to each count; memory of the manager (growth per kernel) and of each kernel tree."""
    pid, runtime = managers.sides[name]
    time.sleep(1.0)  # let the last shutdown settle
    before = set(children_map().get(pid, []))
    rss0, pss0 = proc_field(pid, "VmRSS"), proc_field(pid, "Pss", "smaps_rollup")
    ids: list[str] = []
    try:
        for k in counts:
            new_ids = managers.start(name, k - len(ids))
            for kid in new_ids:
                wait_kernel(runtime / f"kernel-{kid}.json", 120)
            ids += new_ids
            time.sleep(1.0)  # the kernels' first replies are sent; their imports are done
            kids = children_map()
            new = [p for p in kids.get(pid, []) if p not in before]
            OWNED_GROUPS.update(new)
            mems = [tree_mem(p, kids) for p in new]
            figures = {"rss_per_kernel": (proc_field(pid, "VmRSS") - rss0) / k / 1e6,
                       "pss_per_kernel": (proc_field(pid, "Pss", "smaps_rollup") - pss0) / k / 1e6,
                       "kernel_rss": statistics.median(m[0] for m in mems) / 1e6 if mems else float("nan"),
                       "kernel_pss": statistics.median(m[1] for m in mems) / 1e6 if mems else float("nan")}
            for key, value in figures.items():
                out.setdefault((name, k, key), []).append(value)
            progress(f"kernels run {run + 1} k={k} {name}: manager +{figures['rss_per_kernel']:.2f} MB RSS per "
                     f"kernel, kernel tree RSS {figures['kernel_rss']:.1f} MB ({len(mems)} trees)")
    finally:
        managers.stop(name, ids)


async def bench_kernels(root: Path, counts: list[int], runs: int, spec: str, out: dict) -> None:
    managers = Managers(root, spec)
    try:
        await managers.open()
        for name in ("gateway", "mkm"):  # warm-up: one-time imports are not a per-kernel cost
            await asyncio.to_thread(grow, managers, name, [1], {}, -1)  # printed as "run 0"
        for run in range(runs):
            for name in ("gateway", "mkm"):
                await asyncio.to_thread(grow, managers, name, counts, out, run)
    finally:
        await managers.close()


def fmt_size(size: int) -> str:
    return f"{size / 1e9:g} GB" if size >= 10**9 else f"{size / 1e6:g} MB"


def mmm(values: list[float], digits: int = 1) -> str:
    return " / ".join(f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values)))


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)  # stderr: stdout keeps only the table


def report(through: dict, kernels: dict, counts: list[int]) -> None:
    print("| figure | min / median / max |\n| --- | --- |")
    for (path, size), row in through.items():
        name = f"{path} {fmt_size(size)}"
        ref = "raw jupyter_client" if path == "query" else "a pipe"
        print(f"| {name}: ours MB/s | {mmm(row['ours'])} |\n| {name}: {ref} MB/s | {mmm(row['ref'])} |\n"
              f"| {name}: ratio ours/reference | {mmm(row['ratio'], 2)} |\n"
              f"| {name}: runner peak RSS MB | {mmm(row['peak'])} |")
    for k in counts:
        g, m = ({key[2]: v for key, v in kernels.items() if key[:2] == (side, k)} for side in ("gateway", "mkm"))
        over = [a - b for a, b in zip(g["rss_per_kernel"], m["rss_per_kernel"])]
        for label, values in (("runner RSS growth per kernel MB", g["rss_per_kernel"]),
                              ("runner PSS growth per kernel MB", g["pss_per_kernel"]),
                              ("AsyncMultiKernelManager RSS growth per kernel MB", m["rss_per_kernel"]),
                              ("runner overhead per kernel (difference) MB", over)):
            print(f"| kernels k={k}: {label} | {mmm(values, 2)} |")
        for what in ("rss", "pss"):
            print(f"| kernels k={k}: kernel tree {what.upper()} each, gateway / jupyter_client MB | "
                  f"{mmm(g['kernel_' + what])} vs {mmm(m['kernel_' + what])} |")


def parse_sizes(text: str) -> list[int]:
    items = [i.removesuffix("B") for i in text.replace(" ", "").upper().split(",") if i]
    sizes = [int(float(i[:-1]) * 1000 ** "KMG".index(i[-1]) * 1000) if i[-1] in "KMG" else int(i) for i in items]
    if not sizes or any(size <= 0 or size % 1000 for size in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be positive multiples of 1000 bytes")
    return sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=parse_sizes, default=None, help="output sizes (default 1M,100M,1G)")
    ap.add_argument("--runs", type=int, default=None, help="runs (default 3; 1 with --quick)")
    ap.add_argument("--kernels", default=None, help="kernel counts (default 1,2,4,8)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1M,4M, 1 run, kernels 1,2")
    ap.add_argument("--only", nargs="+", choices=("query", "batch", "kernels"), default=["query", "batch", "kernels"])
    ap.add_argument("--kernel-spec", default="python3", help="kernelspec for the kernel-count figures")
    ap.add_argument("--seconds-per-mb", type=float, default=2.0, help="timeout per transfer: 120 s + this per MB")
    args = ap.parse_args()
    sizes = args.sizes or ([10**6, 4 * 10**6] if args.quick else [10**6, 10**8, 10**9])
    counts = sorted({int(c) for c in (args.kernels or ("1,2" if args.quick else "1,2,4,8")).split(",") if c})
    runs = args.runs or (1 if args.quick else 3)
    if runs < 1 or not counts or min(counts) < 1:
        ap.error("--runs and --kernels must be positive")
    load_start, started = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    through, kernels = {}, {}  # type: ignore[var-annotated]
    with tempfile.TemporaryDirectory(prefix="krunner-scaling-") as tmp:
        root = Path(tmp)
        os.environ.update({"HOME": tmp, "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
                           "JUPYTER_DATA_DIR": str(root / "data"), "IPYTHONDIR": str(root / "ipython")})
        try:
            for path in ("query", "batch"):
                if path in args.only:
                    asyncio.run(throughput(root, path, sizes, runs, args.seconds_per_mb, through))
            if "kernels" in args.only:
                asyncio.run(bench_kernels(root, counts, runs, args.kernel_spec, kernels))
        finally:
            kill_owned(tmp)
    print(f"{started}, {runs} run(s); sizes {', '.join(map(fmt_size, sizes))}; kernels {counts}")
    print("load average at start: " + " ".join(f"{x:.2f}" for x in load_start))
    report(through, kernels, counts if "kernels" in args.only else [])
    print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
