"""Idle culling: unused gateway kernels are shut down; connected ones and the main kernel stay."""
from __future__ import annotations

import time

import requests

from tests.wsclient import ChannelsClient
from tests.gatewaylib import GatewayProcess, isolated_env


def _ids(gw) -> set[str]:
    return {k["id"] for k in requests.get(gw.url + "/api/kernels", headers=gw.headers, timeout=10).json()}


def _wait_gone(gw, kid: str, timeout: float) -> float:
    t0 = time.monotonic()
    while kid in _ids(gw):
        assert time.monotonic() - t0 < timeout, f"kernel {kid} was not culled"
        time.sleep(0.2)
    return time.monotonic() - t0


def test_idle_kernels_are_culled(tmp_path):
    args = ["--main-kernel", "python3", "--GatewayConfig.cull_idle_timeout=2", "--GatewayConfig.cull_interval=0.5"]
    with GatewayProcess(args, env=isolated_env(str(tmp_path)), token="cull") as gw:
        post = lambda: requests.post(gw.url + "/api/kernels", headers=gw.headers, json={"name": "python3"},
                                     timeout=60).json()["id"]
        idle, used = post(), post()
        main = requests.get(gw.url + "/api/status", headers=gw.headers, timeout=10).json()["main_kernel_id"]
        c = ChannelsClient(gw.url, used, "cull", "v1")
        c.execute("1")
        _wait_gone(gw, idle, 20)
        assert {used, main} <= _ids(gw)  # connected and main kernels are kept
        c.execute("2")  # fresh activity, then nobody is connected
        c.close()
        waited = _wait_gone(gw, used, 20)
        assert waited >= 1.5  # not before its idle timeout (2 s)
        time.sleep(1.0)
        assert main in _ids(gw)
        assert gw.wait_log("culling kernel")
