"""`jupyter console --existing <connection file>` on the runner's main kernel, driven through a
pty (pexpect): it sees what the agent's query set, the agent sees what it set, and leaving the
console keeps the agent's kernel. See docs/frontends.md ("jupyter console")."""
from __future__ import annotations

import asyncio
import os
import sys

import pytest

from tests.agentlib import stdout_of
from tests.runnerlib import RunnerProcess

pexpect = pytest.importorskip("pexpect")
pytest.importorskip("jupyter_console")

PROMPT = r"In \[\d+\]: "


async def _expect(child, pattern: str, timeout: float = 60) -> None:
    await asyncio.to_thread(child.expect, pattern, timeout=timeout)


async def test_jupyter_console_existing_shares_the_main_kernel_with_the_agent(runner_dirs, agent_client_factory):
    runner = RunnerProcess("python", runner_dirs, env={"KRUNNER_INTRINSIC_SERVICES": ""})
    await runner.start()
    child = None
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        await agent.wait_ready()
        results = await agent.execute_until_done(None, "query", "from_agent = 'agent side'; print('ok')")
        assert stdout_of(results) == "ok\n"
        # the main kernel's connection file is in the runner's runtime dir (its id is in the log)
        files = sorted(runner_dirs["runtime"].glob("kernel-*.json"))
        assert len(files) == 1, files
        env = {**os.environ, "TERM": "xterm"}
        child = pexpect.spawn(sys.executable, ["-m", "jupyter_console", "--existing", str(files[0]), "--simple-prompt"],
                              env=env, encoding="utf-8", dimensions=(40, 120), timeout=60)
        await _expect(child, PROMPT)
        child.sendline("print(from_agent.upper())")
        await _expect(child, "AGENT SIDE")
        await _expect(child, PROMPT)
        child.sendline("from_console = 6 * 7")
        await _expect(child, PROMPT)
        assert stdout_of(await agent.execute_until_done(None, "query", "print(from_console)")) == "42\n"
        child.sendline("exit(keep_kernel=True)")
        await _expect(child, pexpect.EOF)
        # leaving that way keeps the agent's kernel and its state
        assert stdout_of(await agent.execute_until_done(None, "query", "print(from_agent)")) == "agent side\n"

        # a plain `exit` asks Jupyter to shut the kernel down: the agent is told its state is lost,
        # and the runner's restarted main kernel answers the next query
        child = pexpect.spawn(sys.executable, ["-m", "jupyter_console", "--existing", str(files[0]), "--simple-prompt"],
                              env=env, encoding="utf-8", dimensions=(40, 120), timeout=60)
        await _expect(child, PROMPT)
        child.sendline("exit")
        await _expect(child, pexpect.EOF)
        lost = await agent.execute_until_done(None, "query", "print(from_agent)")
        assert lost[-1]["exitCode"] != 0 and "state was lost" in "".join(t for _, t in lost[-1]["console"])
        assert stdout_of(await agent.execute_until_done(None, "query", "print('back')")) == "back\n"
    finally:
        if child is not None and child.isalive():
            child.terminate(force=True)
        await runner.stop()
