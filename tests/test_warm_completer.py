"""A warm first completion in the runner's Python kernel (docs/performance.md#the-first-completion):
the helper process next to the kernel answers it, the kernel's namespace still counts, the kernel
takes over in a pause, jedi's cache lands in its own private directory, and the helper ends with the
kernel. Real runner, real ipykernel, the agent's own client."""
from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import psutil
import pytest

from tests.agentlib import stdout_of
from tests.runnerlib import RunnerProcess

HELPER = "get_ipython().Completer._krunner_helper"
# a generous bound for a loaded CI machine; a cold first completion takes 2.5 s on a quiet one
WARM_BOUND_S = 2.0


@pytest.fixture
def jedi_cache(tmp_path: Path) -> Path:
    return tmp_path / "jedi-cache"


@pytest.fixture
async def runner(runner_dirs: dict[str, Path], jedi_cache: Path):
    proc = RunnerProcess(lang="python", dirs=runner_dirs, env={"KRUNNER_JEDI_CACHE": str(jedi_cache)})
    await proc.start()
    try:
        yield proc
    finally:
        await proc.stop()


async def query(agent, code: str) -> str:
    results = await agent.execute_until_done(None, "query", code, timeout=120)
    assert results[-1]["exitCode"] == 0, results
    return stdout_of(results).strip()


async def wait_for(agent, code: str, expected: str, timeout: float = 60, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while (value := await query(agent, code)) != expected:
        assert time.monotonic() < deadline, f"{code!r} still gives {value!r}"
        await asyncio.sleep(every)


async def helper_started(agent) -> None:
    """The helper's process exists (it starts between cells, warm_completer.START_AFTER after the
    kernel's completer is made)."""
    await wait_for(agent, f"print({HELPER}.process is not None)", "True", timeout=30, every=0.2)


async def test_helper_answers_the_first_completion_then_the_kernel_takes_over(runner: RunnerProcess,
                                                                               jedi_cache: Path,
                                                                               agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    await helper_started(agent)
    # the state of a kernel whose helper had the time to warm up (on a fresh machine: a few seconds)
    assert await query(agent, f"print({HELPER}.wait_warm(60))") == "True"
    await query(agent, "my_variable_name = 1")
    t0 = time.perf_counter()
    result = await agent.complete("'text'.up", {"post": ""}, timeout=30)
    took = time.perf_counter() - t0
    assert "upper" in result["suggestions"], result
    assert await query(agent, f"print({HELPER}.answered)") == "1"  # the warm path, not the kernel's jedi
    assert took <= WARM_BOUND_S, took
    # the helper sees the text only; IPython's namespace matchers still answer alongside it
    result = await agent.complete("my_var", {"post": " + 1"}, timeout=30)
    assert "my_variable_name" in result["suggestions"], result
    helper_pid = int(await query(agent, f"print({HELPER}.process.pid)"))

    # a pause: the kernel warms its own jedi on its main thread, then stops the helper (each look
    # is a cell, which the kernel counts as activity: look less often than its idle threshold)
    await wait_for(agent, "print('_jedi_matches' in vars(get_ipython().Completer))", "False", every=4.0)
    assert not psutil.pid_exists(helper_pid) or psutil.Process(helper_pid).status() == psutil.STATUS_ZOMBIE
    t0 = time.perf_counter()
    result = await agent.complete("import os\nos.pa", {"post": ""}, timeout=30)
    assert "path" in result["suggestions"], result
    assert time.perf_counter() - t0 <= WARM_BOUND_S

    # the user's namespace holds nothing of ours; jedi's pickles are in the private directory
    assert await query(agent, "print(sorted(k for k in dir() if 'krunner' in k.lower() or 'krb' in k))") == "[]"
    assert stat.S_IMODE(jedi_cache.stat().st_mode) == 0o700
    assert list(jedi_cache.glob("*/*.pkl")), "jedi's on-disk cache was not written there"
    assert not list(Path(runner.dirs["work"]).glob(".cache/jedi")), "jedi wrote into the work dir"


async def test_attributes_of_a_module_the_kernel_has_loaded_need_no_jedi(runner: RunnerProcess,
                                                                         agent_client_factory) -> None:
    """`import os` then `os.pa`: os is loaded in every kernel, so its live attributes answer at
    once, helper cold or warm (here: its cache is empty, it needs seconds)."""
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    await query(agent, "pass")
    for text, expected in (("import os\nos.pa", "path"), ("from os import path as p\np.jo", "join"),
                           ("import json, sys\nsys.std", "stdout")):
        t0 = time.perf_counter()
        result = await agent.complete(text, {"post": ""}, timeout=30)
        assert expected in result["suggestions"] and time.perf_counter() - t0 <= WARM_BOUND_S, (text, result)
    assert await query(agent, f"print({HELPER}.loaded_answers, {HELPER}.answered)") == "3 0"
    # a module the kernel has not loaded is jedi's (the helper's) to answer: nothing is imported
    result = await agent.complete("import xml.dom.minidom as m\nm.parseS", {"post": ""}, timeout=30)
    assert "parseString" in result["suggestions"], result
    assert await query(agent, "import sys; print('xml.dom.minidom' in sys.modules)") == "False"


async def test_a_cold_helper_is_not_waited_for(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    await query(agent, "my_variable_name = 1")
    # right after the start, on an empty cache: the helper is still parsing, so the kernel's own
    # jedi answers (as it would without the helper: builtins only here, so that a loaded machine
    # stays within the runner's 5 s) and the helper is stopped
    result = await agent.complete("my_var", {"post": ""}, timeout=30)
    assert "my_variable_name" in result["suggestions"], result
    if await query(agent, f"print({HELPER}.answered)") == "0":  # (a very fast machine: it may be warm)
        assert await query(agent, f"print({HELPER}.process)") == "None"
        assert await query(agent, "print('_jedi_matches' in vars(get_ipython().Completer))") == "False"


async def test_the_helper_ends_with_the_kernel(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    await helper_started(agent)
    helper_pid = int(await query(agent, f"print({HELPER}.process.pid)"))
    helper = psutil.Process(helper_pid)
    assert helper.cmdline()[1].endswith("completion_helper.py")
    if hasattr(os, "SCHED_IDLE"):  # while it warms up, it runs at idle priority
        policy = os.sched_getscheduler(helper_pid)
        assert policy == os.SCHED_IDLE or await query(agent, f"print({HELPER}.wait_warm(0))") == "True"
    await runner.stop()
    psutil.wait_procs([helper], timeout=3)  # it dies with the kernel, even in the middle of its warm-up
    assert not helper.is_running() or helper.status() == psutil.STATUS_ZOMBIE


async def test_the_helper_waits_for_the_kernel_or_a_completion_that_needs_it(
        runner_dirs: dict[str, Path], jedi_cache: Path, agent_client_factory) -> None:
    """The helper is not running while the kernel starts, is not started by a completion that
    needs no jedi, and is started by the first one that does (here KRUNNER_HELPER_START_AFTER
    pushes the timer out of the way)."""
    runner = RunnerProcess(lang="python", dirs=runner_dirs,
                           env={"KRUNNER_JEDI_CACHE": str(jedi_cache), "KRUNNER_HELPER_START_AFTER": "600"})
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        assert await query(agent, f"print({HELPER}.started, {HELPER}.process)") == "False None"
        assert not [p for p in psutil.Process(runner.proc.pid).children(recursive=True)
                    if any(a.endswith("completion_helper.py") for a in p.cmdline())]
        result = await agent.complete("import os\nos.pa", {"post": ""}, timeout=30)  # needs no jedi
        assert "path" in result["suggestions"], result
        assert await query(agent, f"print({HELPER}.started)") == "False"
        result = await agent.complete("import xml.dom.minidom as m\nm.parseS", {"post": ""}, timeout=30)
        assert "parseString" in result["suggestions"], result
        assert await query(agent, f"print({HELPER}.started)") == "True"
    finally:
        await runner.stop()
