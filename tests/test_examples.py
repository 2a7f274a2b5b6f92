"""The example agent client works against a real runner."""
from __future__ import annotations

import asyncio
import sys

from tests.runnerlib import REPO, RunnerProcess


async def _client(runner: RunnerProcess, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(REPO / "examples" / "agent_client.py"),
        "--in-port", str(runner.replin_port), "--out-port", str(runner.replout_port), "--timeout", "60", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 90)
    return proc.returncode, out.decode(), err.decode()


async def test_example_client_ops(runner: RunnerProcess) -> None:
    rc, out, _ = await _client(runner, "status")
    assert rc == 0 and "started_at" in out
    rc, out, err = await _client(runner, "query", "print(input('name? ') + '!')", stdin=b"Lablup\n")
    assert rc == 0 and "Lablup!" in out and "exit code 0" in err
    rc, out, _ = await _client(runner, "query", "1/0")
    assert rc == 1
    rc, out, _ = await _client(runner, "complete", "pri")
    assert rc == 0 and "'print'" in out
    rc, out, _ = await _client(runner, "get-apps")
    assert rc == 0 and '"status": "done"' in out
