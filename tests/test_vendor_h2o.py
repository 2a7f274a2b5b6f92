"""vendor.h2o: without Driverless AI a clear error and a runner that keeps serving; with a DAI
install (a fake one made here: a real run-dai.sh and a real, different Python interpreter) the
script is started once and queries run in that interpreter with state kept between them."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ai.backend.kernel.languages.vendor.h2o.kernel import DaiStarter
from tests.agentlib import stderr_of, stdout_of
from tests.medialib import fake_dai
from tests.runnerlib import RunnerProcess

async def test_no_dai_is_a_clear_error_and_the_runner_keeps_serving(
        runner_dirs: dict[str, Path], tmp_path: Path, agent_client_factory: Any) -> None:
    proc = RunnerProcess(lang="vendor.h2o", dirs=runner_dirs,
                         env={"KRUNNER_H2O_DAI_HOME": str(tmp_path / "no-dai-here")})
    await proc.start()
    try:
        agent = await agent_client_factory(proc.replin_port, proc.replout_port)
        for _ in range(2):
            results = await agent.execute_until_done(None, "query", "print('hello')")
            assert results[-1]["status"] == "finished" and results[-1]["exitCode"] != 0
            assert "This image has no H2O Driverless AI" in stderr_of(results)
            assert str(tmp_path / "no-dai-here" / "run-dai.sh") in stderr_of(results)
        assert (await agent.status(timeout=10)) is not None
        assert proc.proc is not None and proc.proc.returncode is None
    finally:
        assert await proc.stop() == 0


async def test_queries_run_in_the_dai_interpreter(runner_dirs: dict[str, Path], tmp_path: Path,
                                                  agent_client_factory: Any) -> None:
    home = fake_dai(tmp_path)
    dai_python = home / "python" / "bin" / "python"
    proc = RunnerProcess(lang="vendor.h2o", dirs=runner_dirs, env={
        "KRUNNER_H2O_DAI_HOME": str(home), "TMPDIR": str(tmp_path)})  # the once-per-container marker
    await proc.start()
    try:
        agent = await agent_client_factory(proc.replin_port, proc.replout_port)
        results = await agent.execute_until_done(None, "query", "import sys\nprint(sys.executable)\nx = 41")
        assert results[-1]["exitCode"] == 0, stderr_of(results)
        assert stdout_of(results).strip() == str(dai_python)
        results = await agent.execute_until_done(None, "query", "x + 1")
        assert stdout_of(results) == "42"
        results = await agent.execute_until_done(None, "query", "def f():\n    return 1 / 0\nf()")
        assert results[-1]["exitCode"] == 1 and "ZeroDivisionError" in stderr_of(results)
        assert "kernel_driver" not in stderr_of(results)
        results = await agent.execute_until_done(None, "query", "raise SystemExit(3)")
        assert results[-1]["exitCode"] == 3
        results = await agent.execute_until_done(None, "query", "name = input('who? ')\nprint('hi', name)",
                                                 on_waiting_input=lambda r: "dai")
        assert stdout_of(results).endswith("hi dai\n")
        first = await agent.execute(None, "query", "print('go', flush=True)\nwhile True: pass", flush_timeout=0.5)
        while "go" not in stdout_of(first):
            first = await agent.execute(first["runId"], "continue", flush_timeout=0.5)
        await agent.interrupt()
        results = await asyncio.wait_for(agent.execute_until_done(first["runId"], "continue", flush_timeout=0.3), 15)
        assert results[-1]["exitCode"] == 1 and "KeyboardInterrupt" in stderr_of(results)
        results = await agent.execute_until_done(None, "query", "x")
        assert stdout_of(results) == "41"  # interrupted, state kept
        for _ in range(50):
            if (home / "starts.log").exists():
                break
            await asyncio.sleep(0.1)
        starts = (home / "starts.log").read_text().splitlines()
        assert len(starts) == 1 and starts[0].endswith(f"in {home}")
    finally:
        await proc.stop()
    assert not any(p.is_dir() for p in Path("/proc").glob("[0-9]*")
                   if _cmdline(p).startswith(str(dai_python)))  # no interpreter left behind


def _cmdline(proc_dir: Path) -> str:
    try:
        return (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_run_dai_runs_once_per_container(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    home = fake_dai(tmp_path)
    for _ in range(2):
        starter = DaiStarter(home / "run-dai.sh")
        starter.start()
        starter.join(30)
        assert starter.problem is None
    assert len((home / "starts.log").read_text().splitlines()) == 1
    failing = tmp_path / "failing.sh"
    failing.write_text("#!/bin/sh\nexit 3\n")
    failing.chmod(0o755)
    starter = DaiStarter(failing)
    starter.start()
    starter.join(30)
    assert starter.problem is not None and "status 3" in starter.problem


async def test_runtime_path_is_the_dai_interpreter(runner_dirs: dict[str, Path], tmp_path: Path,
                                                   agent_client_factory: Any) -> None:
    """RUNTIME_PATH on the command line names the interpreter even when the DAI home has none."""
    home = fake_dai(tmp_path)
    elsewhere = tmp_path / "other" / "python3"
    elsewhere.parent.mkdir()
    (home / "python" / "bin" / "python").rename(elsewhere)
    proc = RunnerProcess(lang="vendor.h2o", dirs=runner_dirs, runtime_path=str(elsewhere),
                         env={"KRUNNER_H2O_DAI_HOME": str(home), "TMPDIR": str(tmp_path)})
    await proc.start()
    try:
        agent = await agent_client_factory(proc.replin_port, proc.replout_port)
        results = await agent.execute_until_done(None, "query", "import sys\nsys.executable")
        assert results[-1]["exitCode"] == 0, stderr_of(results)
        assert stdout_of(results) == repr(str(elsewhere))
    finally:
        await proc.stop()
