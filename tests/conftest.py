"""Shared fixtures: every test runs isolated from the machine (HOME, Jupyter dirs) and starts
real runners on free ports."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.runnerlib import RunnerProcess, free_port

pytest_plugins = ["tests.agentlib.fixtures"]

# Keep the real toolchain homes reachable when HOME moves (rustup/cargo live in root's home).
_REAL_HOME = os.path.expanduser("~")
for _name, _sub in (("RUSTUP_HOME", ".rustup"), ("CARGO_HOME", ".cargo")):
    if _name not in os.environ and os.path.isdir(os.path.join(_REAL_HOME, _sub)):
        os.environ[_name] = os.path.join(_REAL_HOME, _sub)

_ISOLATED = Path(tempfile.mkdtemp(prefix="krunner-tests-"))
for _var, _sub in (
    ("HOME", "home"),
    ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"),
    ("JUPYTER_DATA_DIR", "jupyter-data"),
    ("JUPYTER_CONFIG_DIR", "jupyter-config"),
    ("IPYTHONDIR", "ipython"),
):
    (_ISOLATED / _sub).mkdir(parents=True, exist_ok=True)
    os.environ[_var] = str(_ISOLATED / _sub)
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_ISOLATED, ignore_errors=True)


@pytest.fixture
def runner_dirs(tmp_path: Path) -> Iterator[dict[str, Path]]:
    dirs = {name: tmp_path / name for name in ("work", "config", "runtime")}
    for path in dirs.values():
        path.mkdir()
    yield dirs


@pytest.fixture
async def runner(runner_dirs: dict[str, Path]) -> AsyncIterator[RunnerProcess]:
    """A real Python runner on free ports, ready to answer (its kernel may still be starting)."""
    proc = RunnerProcess(lang="python", dirs=runner_dirs)
    await proc.start()
    try:
        yield proc
    finally:
        await proc.stop()


__all__ = ["free_port"]
