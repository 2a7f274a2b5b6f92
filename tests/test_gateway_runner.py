"""The gateway inside a real runner: the agent's queries and Jupyter clients share the main kernel."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.wsclient import ChannelsClient, stdout_of as ws_stdout
from tests.agentlib import stdout_of
from tests.runnerlib import RunnerProcess, free_port

TOKEN = "runner-gw"


@pytest.fixture
async def gw_runner(runner_dirs: dict[str, Path]):
    port = free_port()
    proc = RunnerProcess(lang="python", dirs=runner_dirs,
                         extra_args=["--gateway-port", str(port), "--gateway-token", TOKEN])
    await proc.start()
    proc.gateway_url = f"http://127.0.0.1:{port}"
    try:
        yield proc
    finally:
        await proc.stop()


def _get(url: str, path: str) -> requests.Response:
    return requests.get(url + path, headers={"Authorization": f"token {TOKEN}"}, timeout=10)


async def _main_kernel(url: str, timeout: float = 30.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status = await asyncio.to_thread(_get, url, "/api/status")
        if status.status_code == 200 and status.json()["main_kernel_id"]:
            return status.json()["main_kernel_id"]
        assert loop.time() < deadline, "the main kernel never appeared in the gateway"
        await asyncio.sleep(0.2)


async def test_agent_query_and_jupyter_clients_share_the_main_kernel(gw_runner, agent_client_factory):
    agent = await agent_client_factory(gw_runner.replin_port, gw_runner.replout_port)
    results = await agent.execute_until_done(None, "query", "shared = 41")
    assert results[-1]["exitCode"] == 0
    url = gw_runner.gateway_url
    main = await _main_kernel(url)
    assert main in [k["id"] for k in (await asyncio.to_thread(_get, url, "/api/kernels")).json()]

    # jupyter run --existing on the main kernel's connection file sees the agent's variable
    cfile = gw_runner.dirs["runtime"] / f"kernel-{main}.json"
    assert cfile.exists()
    script = gw_runner.dirs["work"].parent / "bump.py"
    script.write_text("shared += 1\nprint('shared is', shared)\n")
    jupyter_run = shutil.which("jupyter-run")
    argv = [jupyter_run] if jupyter_run else [sys.executable, "-m", "jupyter_client.runapp"]
    out = await asyncio.to_thread(subprocess.run, [*argv, "--existing", str(cfile), str(script)],
                                  capture_output=True, text=True, timeout=60)
    assert "shared is 42" in out.stdout, out.stdout + out.stderr

    # a websocket client and the agent run on the same kernel at once without stealing output
    ws = await asyncio.to_thread(ChannelsClient, url, main, TOKEN, "v1")
    agent_task = asyncio.create_task(agent.execute_until_done(
        None, "query", "import time; time.sleep(0.5); print('agent sees', shared)"))
    await asyncio.sleep(0.1)
    reply, io = await asyncio.to_thread(ws.execute, "shared += 100; print('lab sees', shared)")
    results = await agent_task
    assert reply["content"]["status"] == "ok" and ws_stdout(io) == "lab sees 142\n"
    assert stdout_of(results) == "agent sees 42\n"
    results = await agent.execute_until_done(None, "query", "print(shared)")
    assert stdout_of(results) == "142\n"
    ws.close()

    # a gateway client cannot shut the runner's main kernel down: a DELETE only releases it
    r = await asyncio.to_thread(requests.delete, f"{url}/api/kernels/{main}",
                                headers={"Authorization": f"token {TOKEN}"}, timeout=10)
    assert r.status_code == 204 and r.headers.get("X-Krunner-Kernel") == "kept"
    results = await agent.execute_until_done(None, "query", "print(shared + 1)")
    assert stdout_of(results) == "143\n"  # the agent's kernel and its state are still there
