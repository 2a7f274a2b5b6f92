"""The runner's start-up order (docs/protocol.md#start-up-and-shutdown): batch and the services wait
for the main kernel to be ready, an op that needs them has them built at once, `subsystems_wait`
bounds the wait, and `bootstrap.sh` is the first task even behind ops queued before it."""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.agentlib import stdout_of
from tests.runnerlib import RunnerProcess

BATCH_STARTED = "user-input socket listening"  # batch.start()'s log line: batch and services are built
KERNEL_READY = "is ready; connection file"


def silent_kernel(share: Path) -> dict[str, str]:
    """A kernelspec whose process never answers (the main kernel stays "starting"), found through
    the runner's own JUPYTER_PATH."""
    spec = share / "kernels" / "krb-silent"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-c", "import time; time.sleep(120)", "{connection_file}"],
        "display_name": "never answers", "language": "python"}))
    return {"JUPYTER_PATH": str(share)}


async def wait_log(runner: RunnerProcess, text: str, timeout: float) -> str:
    async with asyncio.timeout(timeout):
        while text not in (log := runner.log()):
            await asyncio.sleep(0.05)
    return log


async def test_batch_and_services_start_once_the_main_kernel_is_ready(runner: RunnerProcess,
                                                                      agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    results = await agent.execute_until_done(None, "query", "print('hi')")
    assert stdout_of(results) == "hi\n"
    log = await wait_log(runner, BATCH_STARTED, 10)
    assert KERNEL_READY in log and log.index(KERNEL_READY) < log.index(BATCH_STARTED), log
    assert "start before the main kernel is ready" not in log, log


async def test_an_op_that_needs_batch_builds_it_at_once(runner_dirs: dict[str, Path], tmp_path: Path,
                                                         agent_client_factory) -> None:
    runner = RunnerProcess("python", runner_dirs, env=silent_kernel(tmp_path / "share"),
                           extra_args=["--RunnerApp.kernel_name=krb-silent", "--RunnerApp.subsystems_wait=120"])
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        results = await agent.execute_until_done(None, "batch", opts={"exec": "echo served"}, gap=0.1, timeout=30)
        assert results[-1]["status"] == "finished" and results[-1]["exitCode"] == 0, results
        assert stdout_of(results) == "served\n"
        log = runner.log()
        assert "batch and services start before the main kernel is ready (an op needs them)" in log, log
        assert KERNEL_READY not in log, log
    finally:
        await runner.stop()


async def test_subsystems_wait_bounds_the_wait_for_a_kernel_that_never_answers(
        runner_dirs: dict[str, Path], tmp_path: Path) -> None:
    runner = RunnerProcess("python", runner_dirs, env=silent_kernel(tmp_path / "share"),
                           extra_args=["--RunnerApp.kernel_name=krb-silent", "--RunnerApp.subsystems_wait=0.5"])
    await runner.start()
    try:
        log = await wait_log(runner, BATCH_STARTED, 20)
        assert "batch and services start before the main kernel is ready (subsystems_wait)" in log, log
    finally:
        await runner.stop()


async def test_bootstrap_runs_before_a_query_queued_ahead_of_it(runner_dirs: dict[str, Path],
                                                                 agent_client_factory) -> None:
    """The query is queued as soon as `status` answers, long before the runner looks for
    bootstrap.sh; the script still runs first, and the query sees what it wrote."""
    marker = runner_dirs["work"] / "booted.txt"
    (runner_dirs["work"] / "bootstrap.sh").write_text(f"sleep 0.5\necho booted > '{marker}'\n")
    runner = RunnerProcess("python", runner_dirs)
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        results = await agent.execute_until_done(None, "query", f"print(open({str(marker)!r}).read().strip())")
        assert results[-1]["exitCode"] == 0, results
        assert stdout_of(results).endswith("booted\n"), results
    finally:
        await runner.stop()


async def test_extra_kernel_env_reaches_the_main_kernel_only(runner_dirs: dict[str, Path],
                                                             agent_client_factory) -> None:
    """`--RunnerApp.extra_kernel_env` pairs are in the main kernel's environment (the preloaded
    interpreter had them from its start, so it still becomes the kernel), not in batch children."""
    runner = RunnerProcess("python", runner_dirs, extra_args=[
        "--RunnerApp.extra_kernel_env=KRB_ONE=1", "--RunnerApp.extra_kernel_env=KRB_TWO=a=b"])
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        code = "import os; print(os.environ.get('KRB_ONE'), os.environ.get('KRB_TWO'))"
        results = await agent.execute_until_done(None, "query", code)
        assert stdout_of(results) == "1 a=b\n", results
        assert "main kernel runs in the preloaded interpreter" in runner.log(), runner.log()
        results = await agent.execute_until_done(None, "batch", opts={"exec": "echo \"[$KRB_ONE]\""}, gap=0.1)
        assert stdout_of(results) == "[]\n", results
    finally:
        await runner.stop()
