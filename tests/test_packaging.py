"""The project's sdist and wheel ship what the runtime needs, and nothing from tests/bench/builders.

Builds the sdist with setuptools' PEP 517 backend from a copy of the source tree (the shared work
tree is not touched), then the wheel *from that sdist* with pip, as an installer would: a file
missing from MANIFEST.in then goes missing from both.
"""
from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("ai/backend/kernel", "ai/backend/helpers")
NOT_SHIPPED = ("tests/", "bench/", "builders/")


def _copy_source(dst: Path) -> None:
    ignore = shutil.ignore_patterns(".git", "__pycache__", "*.py[co]", "*.egg-info", "build", "dist", "out", "work")
    for name in ("setup.cfg", "setup.py", "MANIFEST.in", "README.md", "pyproject.toml", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, dst / name)
    for name in ("ai", "kernelspecs", "tests", "bench", "builders"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, dst / name, ignore=ignore)


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    src = tmp_path_factory.mktemp("src")
    out = tmp_path_factory.mktemp("dist")
    _copy_source(src)
    subprocess.run(
        [sys.executable, "-c", "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))",
         str(out)],
        cwd=src, check=True, capture_output=True, timeout=120,
    )
    (sdist,) = out.glob("*.tar.gz")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(sdist)],
        check=True, capture_output=True, timeout=180,
    )
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def _package_files() -> set[str]:
    """Every file of the two packages in the source tree (what the runtime must get)."""
    files = set()
    for pkg in PACKAGES:
        for p in (REPO / pkg).rglob("*"):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"):
                files.add(p.relative_to(REPO).as_posix())
    return files


def _kernelspec_files() -> set[str]:
    return {
        p.relative_to(REPO / "kernelspecs").as_posix()
        for p in (REPO / "kernelspecs").rglob("*")
        if p.is_file() and (p.parent / "kernel.json").is_file()
    }


def _sdist_names(sdist: Path) -> set[str]:
    with tarfile.open(sdist) as tf:
        names = {m.name for m in tf.getmembers() if m.isfile()}
    return {n.split("/", 1)[1] for n in names if "/" in n}


def _wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_wheel_has_every_package_file(dists: tuple[Path, Path]) -> None:
    names = _wheel_names(dists[1])
    missing = sorted(_package_files() - names)
    assert not missing, f"files of the runner packages missing from the wheel: {missing}"


def test_wheel_ships_kernelspecs_as_jupyter_data(dists: tuple[Path, Path]) -> None:
    names = _wheel_names(dists[1])
    (data_dir,) = {n.split("/", 1)[0] for n in names if ".data/" in n} or {None}
    assert data_dir, "the wheel has no .data directory"
    prefix = f"{data_dir}/data/share/jupyter/kernels/"
    shipped = {n[len(prefix):] for n in names if n.startswith(prefix)}
    expected = _kernelspec_files()
    assert expected, "no kernelspecs in the source tree"
    assert shipped == expected
    assert {f.split("/")[0] for f in expected} == {p.parent.name for p in (REPO / "kernelspecs").glob("*/kernel.json")}


def test_wheel_leaves_out_tests_bench_builders(dists: tuple[Path, Path]) -> None:
    leaked = sorted(n for n in _wheel_names(dists[1]) if n.startswith(NOT_SHIPPED) or "/tests/" in n)
    assert not leaked, f"not for the wheel: {leaked}"


def test_wheel_metadata_matches_setup_cfg(dists: tuple[Path, Path]) -> None:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    with zipfile.ZipFile(dists[1]) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = zf.read(meta_name).decode()
        entry_points = zf.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    declared = {Requirement(r) for r in cfg.get("options", "install_requires").split("\n") if r.strip()}
    shipped = {Requirement(line.split(":", 1)[1].strip()) for line in meta.splitlines()
               if line.startswith("Requires-Dist:") and "extra ==" not in line}
    assert {(canonicalize_name(r.name), r.specifier) for r in declared} == \
           {(canonicalize_name(r.name), r.specifier) for r in shipped}
    assert "ai.backend.kernel.__main__:main" in entry_points


def test_sdist_contents(dists: tuple[Path, Path]) -> None:
    names = _sdist_names(dists[0])
    for required in ("setup.cfg", "setup.py", "README.md"):
        if (REPO / required).exists():
            assert required in names
    missing = sorted((_package_files() | {f"kernelspecs/{f}" for f in _kernelspec_files()}) - names)
    assert not missing, f"missing from the sdist: {missing}"
    leaked = sorted(n for n in names if n.startswith(NOT_SHIPPED))
    assert not leaked, f"not for the sdist: {leaked}"
