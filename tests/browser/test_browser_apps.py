"""The runner's built-in `jupyter` (Notebook 7) and `jupyterlab` services, started by the agent
(`start-service`), loaded in chromium through the service's port; a cell runs on a kernel that
lives in the runner (through its gateway). See docs/frontends.md ("The built-in apps")."""
from __future__ import annotations

import json
import socket
import sys

import pytest
import requests

from tests.agentlib import AgentClient
from tests.runnerlib import RunnerProcess, free_port
from tests.browser.browserlib import launch_browser, new_page, require_browser, save_failure, wait_until
from tests.browser import lab as jl

GATEWAY_TOKEN = "apps-gateway-token"


def _main_kernel_id(gateway: str, auth: dict[str, str]) -> str | None:
    """The main kernel's id once the gateway listens (it may do so just after the runner answers)."""
    try:
        return requests.get(f"{gateway}/api/status", headers=auth, timeout=10).json()["main_kernel_id"]
    except requests.ConnectionError:
        return None


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def _page_connected(server: str, path: str) -> str:
    """The kernel id of the notebook session at `path` once the page's websocket reached it.

    The page queues cells only after its session has a kernel connection; a websocket counted
    by the server is that connection. (Notebook 7 has no kernel status bar to watch.)"""
    def connected() -> str | None:
        sessions = requests.get(f"{server}/api/sessions", timeout=10).json()
        for session in sessions:
            if session["path"] == path:
                kernel = requests.get(f"{server}/api/kernels/{session['kernel']['id']}", timeout=10).json()
                if kernel.get("connections", 0) >= 1:
                    return kernel["id"]
        return None
    return await wait_until(connected, f"the page's kernel connection for {path}")


@pytest.mark.parametrize("service, page_path, module", [
    ("jupyter", "notebooks/app.ipynb", "notebook"),
    ("jupyterlab", "lab/tree/app.ipynb", "jupyterlab"),
])
async def test_builtin_app_serves_a_notebook_running_on_the_runner(
        service, page_path, module, runner_dirs, agent_client_factory, request, tmp_path):
    require_browser()
    pytest.importorskip(module)
    gw_port = free_port()
    runner = RunnerProcess("python", runner_dirs, env={"KRUNNER_INTRINSIC_SERVICES": ""},
                           extra_args=["--gateway-port", str(gw_port), "--gateway-token", GATEWAY_TOKEN],
                           runtime_path=sys.executable)
    await runner.start()
    gateway = f"http://127.0.0.1:{gw_port}"
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        await agent.wait_ready()
        auth = {"Authorization": f"token {GATEWAY_TOKEN}"}
        main_id = await wait_until(lambda: _main_kernel_id(gateway, auth), "the runner's main kernel")
        main_name = requests.get(f"{gateway}/api/kernels/{main_id}", headers=auth, timeout=10).json()["name"]
        (runner_dirs["work"] / "app.ipynb").write_text(json.dumps({
            "cells": [], "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": main_name, "display_name": main_name}}}))
        port = free_port()
        assert await agent.start_service(AgentClient.service_payload(service, [port], "http")) == {"status": "started"}
        async with launch_browser() as browser, new_page(browser) as page:
            try:
                await page.goto(f"http://127.0.0.1:{port}/{page_path}")
                await jl.notebook(page).locator(".jp-Cell").first.wait_for()
                kernel_id = await _page_connected(f"http://127.0.0.1:{port}", "app.ipynb")
                await jl.notebook(page).locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for()
                cell = await jl.run_cell(page, "import os; print(os.environ.get('KERNEL_GATEWAY'), 6 * 7)")
                assert (await jl.output_text(cell)).strip() == "1 42"
            finally:
                await save_failure(page, request, tmp_path)
        # the notebook's kernel is one of the runner's: the runner's gateway lists it
        ours = requests.get(f"{gateway}/api/kernels", headers=auth, timeout=10).json()
        assert kernel_id in [k["id"] for k in ours]
        await agent.shutdown_service(service)
        await wait_until(lambda: not _port_open(port), f"the {service} service to stop")
        # the app shut down the kernel it had started; the agent's main kernel stays
        def kernels() -> list[str]:
            return [k["id"] for k in requests.get(f"{gateway}/api/kernels", headers=auth, timeout=10).json()]
        await wait_until(lambda: kernel_id not in kernels(), "the app's kernel to be shut down", timeout=15)
        assert main_id in kernels()
    finally:
        await runner.stop()
