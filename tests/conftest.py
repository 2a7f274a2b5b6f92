"""Shared fixtures: every test runs isolated from the machine (HOME, Jupyter dirs) and starts
real runners on free ports."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests import toolcheck
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


# Skip reasons that mean "a tool, kernel or module is missing" (tests/toolcheck.py's policy, for a
# skip that does not go through require_tool): under CI they become failures naming the tool.
_MISSING_TOOL = re.compile(r"not installed|is missing|not on PATH|could not import|No module named", re.I)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if not (toolcheck.in_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if _MISSING_TOOL.search(reason) and not any(name in reason.lower() for name in toolcheck.ALWAYS_SKIPPABLE):
        report.outcome = "failed"
        report.longrepr = f"CI must not skip for a missing tool: {reason}"


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
