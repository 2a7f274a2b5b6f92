"""Check a runtime tree against what a Backend.AI agent needs from it (docs/deployment.md).

- bin/python exists (the agent runs PREFIX/bin/python);
- site-packages/ai/backend/{kernel,helpers} exist and are empty (the agent bind-mounts its own
  runner there) and `ai`, `ai/backend` stay namespace packages (no __init__.py);
- our runner is in lib/krunner-bridge, with the start-up hook that puts it first;
- every file and directory is world-readable (the volume is mounted read-only for any uid);
- lib/ holds no general-purpose shared library: user programs get LD_LIBRARY_PATH=PREFIX/lib.
Prints one line per check; exits 1 on any failure.

usage: layoutcheck.py TREE --python X.Y [--runner 0|1]
"""
from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

ALLOWED_IN_LIB = {"ld-musl-x86_64.so.1", "ld-musl-aarch64.so.1"}  # the musl flavour's own loader (not a library a program links to)


def check(tree: Path, pyv: str, runner: bool) -> list[str]:
    problems: list[str] = []
    site = tree / f"lib/python{pyv}/site-packages"
    if not (tree / "bin/python").exists():
        problems.append("bin/python is missing")
    for d in ("kernel", "helpers"):
        mp = site / "ai/backend" / d
        if not mp.is_dir():
            problems.append(f"mount point {mp.relative_to(tree)} is missing")
        elif any(mp.iterdir()):
            problems.append(f"mount point {mp.relative_to(tree)} is not empty")
    for base in (site, tree / "lib/krunner-bridge"):
        for ns in ("ai/__init__.py", "ai/backend/__init__.py"):
            if (base / ns).exists():
                problems.append(f"{(base / ns).relative_to(tree)} makes a namespace package a regular one")
    if runner and not ((site / "krunner-bridge.pth").is_file() and (site / "_krunner_bridge_site.py").is_file()):
        problems.append("the start-up hook (krunner-bridge.pth, _krunner_bridge_site.py) is missing")
    if runner and not (tree / "lib/krunner-bridge/ai/backend/kernel/__init__.py").is_file():
        problems.append("lib/krunner-bridge/ai/backend/kernel is missing")
    unreadable = []
    for root, dirs, files in os.walk(tree):
        for name in dirs + files:
            p = Path(root, name)
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                continue
            need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(st.st_mode) else 0)
            if st.st_mode & need != need:
                unreadable.append(str(p.relative_to(tree)))
    if unreadable:
        problems.append(f"{len(unreadable)} entries not world-readable, e.g. {unreadable[:3]}")
    libs = sorted(p.name for p in (tree / "lib").iterdir()
                  if p.is_file() and ".so" in p.name and p.name not in ALLOWED_IN_LIB)
    if libs:
        problems.append(f"shared libraries in lib/ would leak into user programs through LD_LIBRARY_PATH: {libs}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("tree", type=Path)
    ap.add_argument("--python", required=True)
    ap.add_argument("--runner", type=int, default=1)
    args = ap.parse_args(argv)
    problems = check(args.tree, args.python, bool(args.runner))
    for p in problems:
        print(f"    FAIL agent layout: {p}")
    if not problems:
        print("    agent layout ok: bin/python, empty mount points, runner in lib/krunner-bridge, "
              "world-readable, no shared library in lib/")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
