"""Query mode for every language through its kernel, driven by the agent's own client.

The code samples are the ones each language's kernel conformance test uses
(tests/test_kernel_<lang>.py), so the runner path and the kernel path exercise the same snippets.
"""
from __future__ import annotations

import asyncio
import importlib
import shutil

import pytest

from tests.agentlib import stderr_of, stdout_of
from tests.runnerlib import RunnerProcess
from tests.toolcheck import require_tool

# LANG on the runner's command line -> the kernel test module holding its samples
LANGS = {
    "c": "test_kernel_c", "cpp": "test_kernel_cpp", "golang": "test_kernel_golang", "rust": "test_kernel_rust",
    "java": "test_kernel_java", "nodejs": "test_kernel_nodejs", "lua": "test_kernel_lua", "php": "test_kernel_php",
    "r": "test_kernel_r", "octave": "test_kernel_octave", "haskell": "test_kernel_haskell",
    "scheme": "test_kernel_scheme", "git": "test_kernel_shell",
}


def _samples(module_name: str) -> type:
    module = importlib.import_module(f"tests.{module_name}")
    from tests.kernellib import LanguageKernelTests

    (cls,) = [v for v in vars(module).values()
              if isinstance(v, type) and issubclass(v, LanguageKernelTests) and v is not LanguageKernelTests]
    return cls


@pytest.mark.parametrize("lang", list(LANGS))
async def test_query_mode_through_the_language_kernel(lang: str, runner_dirs, agent_client_factory) -> None:
    samples = _samples(LANGS[lang])
    require_tool(*samples.tools)
    runner = RunnerProcess(lang, runner_dirs)
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        run = agent.execute_until_done

        results = await run(None, "query", samples.code_hello_world, timeout=120)
        assert results[-1]["exitCode"] == 0, results
        assert "hello, world" in stdout_of(results)

        if samples.code_stderr:
            results = await run(None, "query", samples.code_stderr, timeout=60)
            assert "oops" in stderr_of(results), results

        results = await run(None, "query", samples.code_generate_error, timeout=60)
        assert results[-1]["exitCode"] != 0 and stderr_of(results).strip(), results

        for sample in samples.completion_samples[:1]:
            reply = await agent.complete(sample["text"], {"post": ""}, timeout=30)
            assert set(sample["matches"]) & set(reply["suggestions"]), (sample, reply)

        if samples.code_stdin:
            results = await run(None, "query", samples.code_stdin, on_waiting_input=lambda r: "hello", timeout=60)
            assert any(r["status"] == "waiting-input" for r in results[:-1]), results
            assert samples.stdin_output in stdout_of(results), results

        if samples.code_interrupt:
            first = await agent.execute(None, "query", samples.code_interrupt, flush_timeout=1.5)
            assert first["status"] == "continued", first
            await agent.interrupt()
            results = await run(first["runId"], "continue", timeout=60)
            assert results[-1]["status"] == "finished", results
            results = await run(None, "query", samples.code_after_interrupt, timeout=60)
            assert samples.after_interrupt_output in stdout_of(results), results
    finally:
        await runner.stop()
        await asyncio.sleep(0)


async def test_julia_reports_missing_toolchain(runner_dirs, agent_client_factory) -> None:
    if shutil.which("julia"):
        pytest.skip("julia is installed here")
    runner = RunnerProcess("julia", runner_dirs)
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        results = await agent.execute_until_done(None, "query", 'println("hi")', timeout=60)
        assert results[-1]["exitCode"] != 0
        assert "julia" in stderr_of(results).lower() and "Traceback" not in stderr_of(results)
    finally:
        await runner.stop()
