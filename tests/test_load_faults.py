"""Held under load and faults, at test sizes (bench/soak.py runs the full sizes and prints the
figures; bench/README.md records them). Same properties at both sizes: tests/faultlib.py."""
from __future__ import annotations

import asyncio
import http.client
import json

import pytest
import requests
import websocket

from tests import faultlib
from tests.runnerlib import RunnerProcess, free_port

TOKEN = "load-token"
SLOW_READER_RSS_BOUND_MB = faultlib.spill_rss_bound_mb(32)  # the default memory limit (docs/query-mode.md#slow-agents)
SPILL_MEMORY_MB = 8


async def test_queries_in_a_row_hold_memory_latency_and_fds(runner: RunnerProcess) -> None:
    fig = await faultlib.queries_in_a_row(runner, count=300, warmup=50)
    faultlib.check_queries_in_a_row(fig)


async def test_kernel_killed_over_and_over_never_leaves_the_runner_without_one(runner: RunnerProcess) -> None:
    # 12 > 2 x jupyter_client's restart limit (5): the limit used to leave the runner kernel-less
    fig = await faultlib.kills_during_queries(runner, kills=12, kill_after=1.0)
    faultlib.check_kills(fig)
    assert "restart failed" not in runner.log()


async def test_slow_reader_gets_all_output_in_order_with_bounded_memory(runner: RunnerProcess) -> None:
    fig = await faultlib.slow_reader(runner, total_bytes=100 * faultlib.MB, read_mb_s=40)
    faultlib.check_slow_reader(fig, SLOW_READER_RSS_BOUND_MB)


@pytest.fixture
async def small_memory_runner(runner_dirs):
    spool_dir = runner_dirs["work"].parent / "spool"
    spool_dir.mkdir()
    proc = RunnerProcess(lang="python", dirs=runner_dirs, extra_args=["--output-spool-dir", str(spool_dir)],
                         env={"KRUNNER_OUTPUT_MEMORY_LIMIT": str(SPILL_MEMORY_MB * faultlib.MB)})
    proc.spool_dir = spool_dir
    await proc.start()
    try:
        yield proc
    finally:
        await proc.stop()


async def test_a_backlog_beyond_the_memory_limit_waits_on_disk(small_memory_runner: RunnerProcess) -> None:
    # 300 MB read at 20 MB/s: the kernel is done long before the agent, so most of the output is
    # a backlog at some point; held in memory, the runner would grow by a few hundred MB
    fig = await faultlib.slow_reader(small_memory_runner, total_bytes=300 * faultlib.MB, read_mb_s=20)
    faultlib.check_slow_reader(fig, faultlib.spill_rss_bound_mb(SPILL_MEMORY_MB))
    assert f"waits in {small_memory_runner.spool_dir}" in small_memory_runner.log(), "the spool file was never used"


async def test_slow_reader_of_many_small_messages_gets_all_output(runner: RunnerProcess) -> None:
    # one kernel message per 1 KiB line: the agent socket's queue (1000 frames) fills within 1 MB
    fig = await faultlib.slow_reader(runner, total_bytes=8 * faultlib.MB, read_mb_s=1, flush_each_line=True)
    faultlib.check_slow_reader(fig, SLOW_READER_RSS_BOUND_MB)


async def test_agent_reconnecting_mid_output_gets_the_rest(runner: RunnerProcess) -> None:
    fig = await faultlib.reconnect_mid_output(runner, lines=20_000)
    faultlib.check_reconnect(fig)


@pytest.fixture
async def gw_runner(runner_dirs):
    port = free_port()
    proc = RunnerProcess(lang="python", dirs=runner_dirs,
                         extra_args=["--gateway-port", str(port), "--gateway-token", TOKEN])
    await proc.start()
    proc.gateway_url = f"http://127.0.0.1:{port}"
    try:
        yield proc
    finally:
        await proc.stop()


async def _main_kernel_id(url: str) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        try:
            r = await asyncio.to_thread(requests.get, url + "/api/kernels", headers={"Authorization": f"token {TOKEN}"})
        except requests.ConnectionError:  # the gateway starts after the agent sockets
            r = None
        if r is not None and r.status_code == 200 and r.json():
            return r.json()[0]["id"]
        assert loop.time() < deadline, "the main kernel never appeared in the gateway"
        await asyncio.sleep(0.2)


async def test_fifty_gateway_clients_and_the_agent_share_one_kernel(gw_runner: RunnerProcess) -> None:
    kid = await _main_kernel_id(gw_runner.gateway_url)
    fig = await faultlib.gateway_clients_and_agent(gw_runner, gw_runner.gateway_url, kid, TOKEN,
                                                   clients=50, rounds=2, agent_queries=10)
    faultlib.check_gateway_clients(fig)


async def test_malformed_frames_and_bodies_get_clear_errors(gw_runner: RunnerProcess) -> None:
    url = gw_runner.gateway_url
    auth = {"Authorization": f"token {TOKEN}"}
    kid = await _main_kernel_id(url)

    def rest() -> None:
        for body, status in ((b"{", 400), (b"[1, 2]", 400), (b"\xff\xfe", 400), (b'"x"', 400)):
            r = requests.post(url + "/api/kernels", data=body, headers={**auth, "Content-Type": "application/json"})
            assert r.status_code == status, (body[:10], r.status_code, r.text[:200])
            assert r.json()["message"], r.text  # a reason, not just a code
        # an oversized body is refused from its Content-Length, before it is sent
        conn = http.client.HTTPConnection(url.split("://")[1], timeout=30)
        conn.putrequest("POST", "/api/kernels")
        for name, value in {**auth, "Content-Type": "application/json", "Content-Length": str(2 << 20)}.items():
            conn.putheader(name, value)
        conn.endheaders()
        r = conn.getresponse()
        assert r.status == 413 and json.loads(r.read())["message"]
        conn.close()
        r = requests.post(url + "/api/sessions", data=b'{"kernel": 5}', headers=auth)
        assert 400 <= r.status_code < 500 and r.json()["message"], r.text

    def next_reply(ws) -> dict:
        """The next non-iopub message (iopub is the kernel's broadcast: the agent's traffic too)."""
        while True:
            msg = json.loads(ws.recv())
            if msg.get("channel") != "iopub":
                return msg

    def ws_frames() -> None:
        ws_url = url.replace("http://", "ws://") + f"/api/kernels/{kid}/channels?token={TOKEN}"
        ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        try:
            for junk in ("not json", "[]", "{}", json.dumps({"channel": "shell", "header": 5}),
                         json.dumps({"channel": "nowhere", "header": {"msg_type": "execute_request", "msg_id": "m"}})):
                ws.send(junk)
                reply = next_reply(ws)
                assert reply["content"]["status"] == "error" and reply["content"]["evalue"], reply
            ws.send_binary(b"\x00\x01garbage")
            reply = next_reply(ws)
            assert reply["content"]["status"] == "error", reply
        finally:
            ws.close()

    await asyncio.to_thread(rest)
    await asyncio.to_thread(ws_frames)
    # still serving: a gateway client and the agent both run code
    fig = await faultlib.gateway_clients_and_agent(gw_runner, url, kid, TOKEN, clients=2, rounds=1, agent_queries=1)
    faultlib.check_gateway_clients(fig)
