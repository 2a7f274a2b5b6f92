"""Check that every ELF file of a runtime tree needs nothing outside the tree but libc.

static-gnu: `ldd` of every ELF file may resolve only to glibc's own libraries or to files inside
the tree (a vendored libstdc++ next to a wheel's libs, for example); "not found" fails.
static-musl: the interpreter's PT_INTERP must be the tree's own musl loader at PREFIX, and every
NEEDED entry must be musl's libc or a file found through the ELF's own $ORIGIN RUNPATH.
Prints a summary; exits 1 on any violation.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

GLIBC_LIBS = {
    "linux-vdso.so.1", "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
    "libutil.so.1", "libresolv.so.2", "ld-linux-x86-64.so.2", "libanl.so.1",
}
MUSL_LIBC = {"libc.so", "libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1"}


def elf_files(tree: Path) -> list[Path]:
    """Regular files starting with the ELF magic."""
    found = []
    for root, _dirs, files in os.walk(tree):
        for name in files:
            path = Path(root, name)
            if path.is_symlink() or not path.is_file():
                continue
            with open(path, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    found.append(path)
    return sorted(found)


def interpreter(tree: Path) -> Path:
    """bin/python3.X (the real file; bin/python and bin/python3 are symlinks to it)."""
    found = sorted(p for p in (tree / "bin").glob("python3.*") if not p.is_symlink() and p.name[8:].isdigit())
    return found[-1] if found else tree / "bin" / "python3"


def patchelf(*args: str) -> str:
    return subprocess.run(["patchelf", *args], check=True, capture_output=True, text=True).stdout.strip()


def check_gnu(tree: Path, files: list[Path]) -> list[str]:
    """ldd every file: only glibc libraries or files inside the tree."""
    problems = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("LD_")}
    for path in files:
        res = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env)
        out = res.stdout + res.stderr
        if "not a dynamic executable" in out or "statically linked" in out:
            continue
        for line in out.splitlines():
            line = line.strip()
            m = re.match(r"(\S+)\s*=>\s*(.*?)\s*(\(0x[0-9a-f]+\))?$", line)
            name, target = (m.group(1), m.group(2)) if m else (line.split()[0], line.split()[0])
            if "not found" in target:
                problems.append(f"{path.relative_to(tree)}: {name} not found")
            elif Path(name).name in GLIBC_LIBS or Path(target).name in GLIBC_LIBS:
                continue
            elif not os.path.realpath(target).startswith(str(tree.resolve()) + os.sep):
                problems.append(f"{path.relative_to(tree)}: {name} resolves outside the tree: {target}")
    return problems


def max_glibc_version(path: Path) -> str:
    """The highest GLIBC_x.y symbol version an ELF file needs (its glibc floor)."""
    out = subprocess.run(["objdump", "-T", str(path)], capture_output=True, text=True).stdout
    versions = {tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out)}
    return "GLIBC_" + ".".join(map(str, max(versions))) if versions else "none"


def check_musl(tree: Path, prefix: str, files: list[Path]) -> list[str]:
    """The interpreter uses our loader; NEEDED entries resolve to libc or via $ORIGIN."""
    problems = []
    loader = f"{prefix}/lib/ld-musl-x86_64.so.1"
    python = interpreter(tree)
    interp = patchelf("--print-interpreter", str(python))
    if interp != loader:
        problems.append(f"bin/{python.name}: PT_INTERP is {interp}, expected {loader}")
    for path in files:
        try:
            needed = patchelf("--print-needed", str(path)).split()
            rpath = patchelf("--print-rpath", str(path))
        except subprocess.CalledProcessError:
            continue  # not a dynamic object (the static loader itself)
        dirs = [path.parent] + [Path(p.replace("$ORIGIN", str(path.parent))) for p in rpath.split(":") if p]
        for lib in needed:
            if lib in MUSL_LIBC:
                continue
            if not any((d / lib).exists() for d in dirs):
                problems.append(f"{path.relative_to(tree)}: NEEDED {lib} not found in {[str(d) for d in dirs]}")
        if path != python:
            try:
                pi = patchelf("--print-interpreter", str(path))
            except subprocess.CalledProcessError:
                pi = ""
            if pi and pi != loader:
                problems.append(f"{path.relative_to(tree)}: foreign interpreter {pi}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--flavour", choices=("static-gnu", "static-musl"), required=True)
    ap.add_argument("tree", type=Path)
    ap.add_argument("prefix")
    args = ap.parse_args(argv)
    files = elf_files(args.tree)
    if args.flavour == "static-gnu":
        problems = check_gnu(args.tree, files)
        floor = max_glibc_version(interpreter(args.tree))
        print(f"    elfcheck: {len(files)} ELF files, ldd shows only glibc and in-tree libraries"
              if not problems else f"    elfcheck: {len(problems)} problems in {len(files)} ELF files")
        print(f"    bin/{interpreter(args.tree).name} needs at most {floor}")
    else:
        problems = check_musl(args.tree, args.prefix, files)
        print(f"    elfcheck: {len(files)} ELF files; PT_INTERP of bin/{interpreter(args.tree).name} is "
              f"{args.prefix}/lib/ld-musl-x86_64.so.1; all NEEDED resolve in-tree or to musl libc"
              if not problems else f"    elfcheck: {len(problems)} problems in {len(files)} ELF files")
    for p in problems:
        print("    PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
