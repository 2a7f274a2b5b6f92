"""The runner's gateway as Kernel Gateway clients count kernels: `max_kernels` bounds the kernels
clients start (the runner's main kernel is not theirs to spend), and whether GET /api/kernels
lists the main kernel is `GatewayConfig.list_main_kernel` (docs/conformance.md)."""
from __future__ import annotations

import asyncio

import pytest
import requests

from tests.runnerlib import RunnerProcess, free_port

TOKEN = "limits-token"
AUTH = {"Authorization": f"token {TOKEN}"}


async def _gateway_runner(runner_dirs, *flags: str) -> tuple[RunnerProcess, str, str]:
    port = free_port()
    runner = RunnerProcess("python", runner_dirs, env={"KRUNNER_INTRINSIC_SERVICES": ""},
                           extra_args=["--gateway-port", str(port), "--gateway-token", TOKEN, *flags])
    await runner.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):  # the gateway may start listening just after the runner answers the agent
        try:
            status = await asyncio.to_thread(requests.get, f"{url}/api/status", headers=AUTH, timeout=10)
        except requests.ConnectionError:
            status = None
        if status is not None and status.json()["main_kernel_id"]:
            return runner, url, status.json()["main_kernel_id"]
        await asyncio.sleep(0.1)
    await runner.stop()
    pytest.fail("the runner's main kernel never appeared")


def _call(method: str, url: str, **kw) -> requests.Response:
    return requests.request(method, url, headers=AUTH, timeout=60, **kw)


async def test_max_kernels_counts_client_kernels_only(runner_dirs):
    runner, url, main = await _gateway_runner(
        runner_dirs, "--GatewayConfig.max_kernels=1", "--GatewayConfig.list_main_kernel=False")
    try:
        first = await asyncio.to_thread(_call, "POST", f"{url}/api/kernels", json={})
        assert first.status_code == 201, first.text  # the main kernel does not use up the one slot
        second = await asyncio.to_thread(_call, "POST", f"{url}/api/kernels", json={})
        assert second.status_code == 403 and second.json()["reason"] == "Resource Limit"
        listed = (await asyncio.to_thread(_call, "GET", f"{url}/api/kernels")).json()
        assert [k["id"] for k in listed] == [first.json()["id"]]  # the main kernel is not listed
        assert (await asyncio.to_thread(_call, "GET", f"{url}/api/kernels/{main}")).status_code == 200
        gone = await asyncio.to_thread(_call, "DELETE", f"{url}/api/kernels/{first.json()['id']}")
        assert gone.status_code == 204
        again = await asyncio.to_thread(_call, "POST", f"{url}/api/kernels", json={})
        assert again.status_code == 201
    finally:
        await runner.stop()


async def test_main_kernel_is_listed_by_default(runner_dirs):
    runner, url, main = await _gateway_runner(runner_dirs)
    try:
        listed = (await asyncio.to_thread(_call, "GET", f"{url}/api/kernels")).json()
        assert [k["id"] for k in listed] == [main]
    finally:
        await runner.stop()
