"""Browser suite fixtures and its duration report (the suite must stay within its CI budget)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

BUDGET = float(os.environ.get("KRUNNER_BROWSER_BUDGET", "240"))  # seconds on CI's 2 cores
_HERE = Path(__file__).parent
_durations: dict[str, float] = {}
_started: list[float] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if Path(str(report.fspath)).resolve().parent == _HERE.resolve():
        _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration
        if not _started:
            _started.append(time.monotonic() - report.duration)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _durations:
        return
    total = sum(_durations.values())
    tr = terminalreporter
    tr.write_sep("-", f"browser suite: {len(_durations)} tests, {total:.1f} s (budget {BUDGET:.0f} s)")
    for nodeid, secs in sorted(_durations.items(), key=lambda kv: -kv[1]):
        tr.write_line(f"{secs:7.1f} s  {nodeid}")
    if total > BUDGET:
        tr.write_line(f"WARNING: the browser suite took {total:.0f} s, over its {BUDGET:.0f} s budget")


@pytest.fixture(scope="session", autouse=True)
def _quiet_jupyterlab() -> None:
    """Turn off JupyterLab's "get notified about Jupyter news?" toast (it would cover screenshots).
    Written into the test session's own (isolated) Jupyter config dir."""
    labconfig = Path(os.environ["JUPYTER_CONFIG_DIR"]) / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    path = labconfig / "page_config.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    config.setdefault("disabledExtensions", {})["@jupyterlab/apputils-extension:announcements"] = True
    path.write_text(json.dumps(config))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """Keep each phase's report on the item, so page fixtures can save evidence of a failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
