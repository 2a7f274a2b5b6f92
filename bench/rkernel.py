#!/usr/bin/env python3
"""R kernels side by side: ours (`r`) and IRkernel (`ir`), interleaved in one run.

    python bench/rkernel.py [--cells 60] [--starts 5] [--cell 'cat(1)' ...]

start = `jupyter_client.start_new_kernel` until the kernel_info reply, the two kernels started
        alternately --starts times each;
cell  = one `execute_interactive` of a trivial cell until execute_reply and idle, the two
        kernels alternating cell by cell (--cells each, after one warm-up cell);
cpu   = CPU time (user + system) of the kernel's process tree per cell, the figure that load on
        a shared machine does not change.
Prints min / median / max per kernel and figure (docs/languages.md#r, bench/README.md "R kernel").
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
KERNELS = {"r": "ours (krunner)", "ir": "IRkernel"}


def isolate() -> Path:
    """Temp Jupyter dirs holding links to the repository's `r` and `ir` kernelspecs."""
    tmp = Path(tempfile.mkdtemp(prefix="krb-bench-rkernel-"))
    for var in ("JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR"):
        (tmp / var).mkdir()
        os.environ[var] = str(tmp / var)
    (tmp / "JUPYTER_DATA_DIR" / "kernels").mkdir()
    for name in KERNELS:
        (tmp / "JUPYTER_DATA_DIR" / "kernels" / name).symlink_to(REPO / "kernelspecs" / name)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return tmp


def start(name: str) -> tuple[float, Any, Any]:
    from jupyter_client.manager import start_new_kernel

    t0 = time.perf_counter()
    km, kc = start_new_kernel(kernel_name=name, startup_timeout=120)
    return time.perf_counter() - t0, km, kc


def stop(km: Any, kc: Any) -> None:
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def cell_time(km: Any, kc: Any, code: str) -> tuple[float, int]:
    """Wall seconds and CPU clock ticks of the kernel's process tree for one cell."""
    from ai.backend.kernel.procfacts import cpu_ticks

    pid = km.provisioner.process.pid
    ticks = cpu_ticks(pid)
    t0 = time.perf_counter()
    reply = kc.execute_interactive(code, timeout=120, output_hook=lambda m: None)
    elapsed = time.perf_counter() - t0
    ticks = cpu_ticks(pid) - ticks
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"{code!r}: {reply['content']}")
    return elapsed, ticks


def row(label: str, values: list[float], scale: float, unit: str) -> str:
    v = [x * scale for x in values]
    return (f"{label:34} {min(v):8.1f} {statistics.median(v):8.1f} {max(v):8.1f} {unit:3} "
            f"(n={len(v)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=60, help="trivial cells per kernel")
    parser.add_argument("--starts", type=int, default=5, help="kernel starts per kernel")
    parser.add_argument("--cell", action="append", help="the trivial cell(s) (default: cat(1))")
    args = parser.parse_args()
    codes = args.cell or ["cat(1)"]
    if shutil.which("R") is None:
        sys.exit("R is not installed")
    tmp = isolate()
    try:
        starts: dict[str, list[float]] = {name: [] for name in KERNELS}
        for _ in range(args.starts):
            for name in KERNELS:
                elapsed, km, kc = start(name)
                starts[name].append(elapsed)
                stop(km, kc)
        running = {name: start(name)[1:] for name in KERNELS}
        cells: dict[tuple[str, str], list[float]] = {}
        ticks: dict[tuple[str, str], int] = {}
        try:
            for code in codes:
                for name, (km, kc) in running.items():
                    cell_time(km, kc, code)  # warm-up
                for _ in range(args.cells):
                    for name, (km, kc) in running.items():
                        elapsed, used = cell_time(km, kc, code)
                        cells.setdefault((name, code), []).append(elapsed)
                        ticks[name, code] = ticks.get((name, code), 0) + used
        finally:
            for km, kc in running.values():
                stop(km, kc)
        print(f"{'figure':34} {'min':>8} {'median':>8} {'max':>8}")
        for name, label in KERNELS.items():
            print(row(f"start, {label}", starts[name], 1, "s"))
        for (name, code), values in cells.items():
            cpu_ms = ticks[name, code] * 1000 / os.sysconf("SC_CLK_TCK") / len(values)
            print(row(f"{code}, {KERNELS[name]}", values, 1000, "ms") + f"  cpu {cpu_ms:.1f} ms/cell")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
