"""The runner's cold paths (docs/performance.md, "Cold paths (runner start-up and first query)") and
the idle wait of a query (docs/query-mode.md)."""
from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from ai.backend.kernel import queryexec
from ai.backend.kernel.queryexec import QueryExecution
from tests.runnerlib import REPO

# What the runner may import before it binds the agent sockets and answers `status`.
HEAVY = ("jupyter_client", "tornado", "ai.backend.kernel.kernels", "ai.backend.kernel.bridge",
         "ai.backend.kernel.batch", "ai.backend.kernel.services", "ai.backend.kernel.gateway.app")


def test_the_path_to_status_imports_nothing_heavy() -> None:
    probe = ("import sys\n"
             "from ai.backend.kernel import __main__, runner\n"
             "from ai.backend.kernel.app import RunnerApp\n"
             "app = RunnerApp(); app.initialize(['--replin-port', '1', '--debug', 'python'])\n"
             "runner.Runner\n"
             f"print([m for m in {HEAVY!r} if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_subsystem_option_on_the_command_line_is_still_typed() -> None:
    from ai.backend.kernel.app import RunnerApp

    app = RunnerApp()
    app.parse_command_line(["--batch-kill-grace", "2.5", "python"])
    assert app.config.BatchExecutor.kill_grace == 2.5


@pytest.fixture
def short_grace(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(queryexec, "IDLE_GRACE", 0.2)
    return 0.2


async def test_a_lost_idle_ends_the_query_once_its_iopub_is_quiet(short_grace: float) -> None:
    loop = asyncio.get_running_loop()
    execution = QueryExecution("m", loop.create_future())
    execution.replied = True
    started = loop.time()
    execution.arm_idle_grace(short_grace)
    await asyncio.wait_for(execution.done, 5)
    assert execution.idle and loop.time() - started >= short_grace


async def test_output_being_handed_to_a_slow_agent_keeps_the_query_open(short_grace: float) -> None:
    loop = asyncio.get_running_loop()
    execution = QueryExecution("m", loop.create_future())
    execution.replied = True
    execution.output_started()  # the pump is blocked sending this message to the agent
    execution.arm_idle_grace(short_grace)
    await asyncio.sleep(short_grace * 4)
    assert not execution.done.done()
    execution.output_ended()
    ended = loop.time()
    await asyncio.wait_for(execution.done, 5)
    assert loop.time() - ended >= short_grace * 0.9  # the grace counts from the last output
