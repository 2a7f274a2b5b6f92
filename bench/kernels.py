#!/usr/bin/env python3
"""Language kernels: start time and trivial-cell round trip for every kernelspec of ours.

    python bench/kernels.py [--cells 10] [--starts 3] [LANG ...]

start  = `jupyter_client.start_new_kernel` until the kernel_info reply (median of --starts);
cell   = one `execute_interactive` of a trivial printing cell, until execute_reply and idle
         (median of --cells, after one warm-up cell; compiled languages compile every cell).
Targets (issue 4, 2-core machines): REPL kernels <= 10 ms per trivial cell, C <= 60 ms,
Rust <= 120 ms, Go <= 250 ms, Java <= 800 ms; the ratio column is cell / target.
raw    = for compiled languages, the same program built and run by hand with the plain toolchain
         (gcc / g++ / go build / rustc / javac + java) in a shell loop, median of 5: the reference
         that shows what the kernel adds on this machine at this moment (load included).
Our kernelspecs are linked into a temporary JUPYTER_DATA_DIR; languages whose toolchain is
missing are reported as such.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# name: (executable needed, trivial cell, cell target in ms or None)
LANGS: dict[str, tuple[str, str, float | None]] = {
    "c": ("gcc", 'printf("1\\n");', 60),
    "cpp": ("g++", 'std::cout << 1 << std::endl;', None),
    "golang": ("go", "fmt.Println(1)", 250),
    "rust": ("rustc", 'println!("1");', 120),
    "java": ("javac", "System.out.println(1);", 800),
    "nodejs": ("node", "console.log(1)", 10),
    "lua": ("lua5.4", "print(1)", 10),
    "php": ("php", "echo 1;", 10),
    "scheme": ("mit-scheme", "(display 1)", 10),
    "haskell": ("ghci", "print 1", 10),
    "shell": ("bash", "echo 1", 10),
    "r": ("R", "cat(1)", 10),
    "octave": ("octave-cli", "disp(1)", 10),
    "julia": ("julia", "println(1)", 10),
}


RAW = {
    "c": ("t.c", '#include <stdio.h>\nint main(void){printf("1\\n");return 0;}\n', "gcc -O0 -o t t.c && ./t"),
    "cpp": ("t.cpp", '#include <iostream>\nint main(){std::cout<<1<<std::endl;}\n', "g++ -O0 -o t t.cpp && ./t"),
    "golang": ("t.go", 'package main\nimport "fmt"\nfunc main(){fmt.Println(1)}\n',
               "GO111MODULE=off go build -o t t.go && ./t"),
    "rust": ("t.rs", 'fn main(){println!("1");}\n', "rustc -C opt-level=0 -o t t.rs && ./t"),
    "java": ("Main.java", "public class Main{public static void main(String[] a){System.out.println(1);}}\n",
             "javac Main.java && java -cp . Main"),
}


def raw_time(name: str, runs: int = 5) -> float | None:
    """Median seconds to build and run the trivial program by hand (compiled languages)."""
    import subprocess

    if name not in RAW:
        return None
    file, source, command = RAW[name]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, file).write_text(source)
        subprocess.run(command, shell=True, cwd=tmp, capture_output=True)  # warm caches
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(command, shell=True, cwd=tmp, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def isolate() -> Path:
    """Temp Jupyter dirs holding links to the repository's kernelspecs."""
    tmp = Path(tempfile.mkdtemp(prefix="krb-bench-kernels-"))
    for var in ("JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR"):
        (tmp / var).mkdir()
        os.environ[var] = str(tmp / var)
    (tmp / "JUPYTER_DATA_DIR" / "kernels").mkdir()
    for name in LANGS:
        (tmp / "JUPYTER_DATA_DIR" / "kernels" / name).symlink_to(REPO / "kernelspecs" / name)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return tmp


def measure(name: str, cell: str, starts: int, cells: int) -> tuple[float, float]:
    from jupyter_client.manager import start_new_kernel

    start_times, cell_times = [], []
    for i in range(starts):
        t0 = time.perf_counter()
        km, kc = start_new_kernel(kernel_name=name, startup_timeout=120)
        start_times.append(time.perf_counter() - t0)
        try:
            if i == 0:
                kc.execute_interactive(cell, timeout=120, output_hook=lambda m: None)  # warm-up
                for _ in range(cells):
                    t0 = time.perf_counter()
                    reply = kc.execute_interactive(cell, timeout=120, output_hook=lambda m: None)
                    cell_times.append(time.perf_counter() - t0)
                    if reply["content"]["status"] != "ok":
                        raise RuntimeError(f"{name}: {reply['content']}")
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    return statistics.median(start_times), statistics.median(cell_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=10)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("langs", nargs="*", default=list(LANGS))
    args = parser.parse_args()
    tmp = isolate()
    try:
        print(f"{'kernel':8} {'start s':>8} {'cell ms':>8} {'raw ms':>8} {'target ms':>9} {'cell/target':>11}")
        for name in args.langs:
            exe, cell, target = LANGS[name]
            if shutil.which(exe) is None:
                print(f"{name:8} {'-':>8} {'-':>8} {'-':>8} {'-':>9} {'-':>11}  ({exe} not installed)")
                continue
            start, cell_s = measure(name, cell, args.starts, args.cells)
            raw = raw_time(name)
            raw_ms = f"{raw * 1000:.1f}" if raw is not None else "-"
            ratio = f"{cell_s * 1000 / target:.2f}" if target else "-"
            print(f"{name:8} {start:8.2f} {cell_s * 1000:8.1f} {raw_ms:>8} {target or '-':>9} {ratio:>11}",
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
