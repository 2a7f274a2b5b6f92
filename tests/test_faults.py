"""Nothing lost silently (docs/security.md#faults-nothing-is-lost-silently): a slow helper query never costs the user's
interpreter its state, a restart that is really needed is announced, a kernel dying over and over
never leaves the hub without a kernel, a gateway pump that dies closes its websocket with 1011."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from queue import Empty

import pytest
from jupyter_client.manager import start_new_kernel

from ai.backend.kernel.languages.kernelbase.common import process_tree
from tests import kernellib
from tests.toolcheck import require_tool


def _run(kc, code: str, timeout: float = 30) -> tuple[dict, str, str]:
    """(execute_reply content, stdout, stderr) of one cell."""
    msg_id = kc.execute(code)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    out = {"stdout": "", "stderr": ""}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out[msg["content"]["name"]] += msg["content"]["text"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return reply["content"], out["stdout"], out["stderr"]


def _interpreters(km) -> list[int]:
    pid = km.provisioner.process.pid
    return [p for p in process_tree(pid) if p != pid]


@pytest.fixture
def lua_kernel():
    require_tool("lua5.4")
    kernellib.install_kernelspecs()
    km, kc = start_new_kernel(kernel_name="lua", startup_timeout=60)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


SLOW_TABLE = ("slow = setmetatable({}, {__pairs = function(t) local t0 = os.clock() "
              "while os.clock() - t0 < 9 do end return next, {}, nil end})")


def test_slow_completion_keeps_the_interpreter_and_its_state(lua_kernel) -> None:
    km, kc = lua_kernel
    assert _run(kc, "kept = 42")[0]["status"] == "ok"
    assert _run(kc, SLOW_TABLE)[0]["status"] == "ok"
    before = _interpreters(km)
    assert before, "the Lua kernel has no interpreter child"
    started = time.monotonic()
    msg_id = kc.complete("slow.x", 6)
    reply = kc.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok"
    assert time.monotonic() - started < 12, "the completion was not cut short"
    assert _interpreters(km) == before, "the interpreter was replaced (its state lost)"
    reply, out, err = _run(kc, "print(kept)")
    assert reply["status"] == "ok" and "42" in out, (reply, out, err)
    assert "restarted" not in err
    # completion still works afterwards
    kc.complete("kep", 3)
    assert "kept" in kc.get_shell_msg(timeout=30)["content"]["matches"]


def test_a_needed_restart_is_announced_on_the_users_output(lua_kernel) -> None:
    km, kc = lua_kernel
    assert _run(kc, "kept = 42")[0]["status"] == "ok"
    for pid in _interpreters(km):
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    reply, out, err = _run(kc, "print(kept)")
    assert "restarted" in err and "state" in err, err
    assert reply["status"] == "ok" and "nil" in out  # a fresh interpreter, and the user was told


# ------------------------------------------------------------------------------- gateway pumps
async def test_a_dead_gateway_pump_closes_its_websocket_with_1011(tmp_path, caplog) -> None:
    from tornado.websocket import websocket_connect

    from ai.backend.kernel.gateway import start_gateway
    from ai.backend.kernel.kernels import KernelHub

    hub = KernelHub(connection_dir=str(tmp_path))
    kid = await hub.start_kernel("python3")
    await hub.wait_ready(kid)
    server = await start_gateway(hub, ip="127.0.0.1", port=0)
    url = f"ws://127.0.0.1:{server.port}/api/kernels/{kid}/channels?session_id=s1"
    try:
        ws = await websocket_connect(url)
        reply, out = await _ws_execute(ws, "print(6 * 7)")
        assert reply["status"] == "ok" and out == "42\n"
        # the session's iopub socket goes away under its pump: a real ZMQ failure, not a mock
        cs = server.state.channel_sessions[(kid, "s1")]
        cs.sockets["iopub"].close(linger=0)
        async with asyncio.timeout(10):
            while await ws.read_message() is not None:
                pass
        assert ws.close_code == 1011 and "iopub" in (ws.close_reason or ""), (ws.close_code, ws.close_reason)
        assert "broken" in caplog.text and "iopub" in caplog.text
        # a reconnect with the same session_id gets a fresh, working session
        ws = await websocket_connect(url)
        reply, out = await _ws_execute(ws, "print(7 * 6)")
        assert reply["status"] == "ok" and out == "42\n"
        ws.close()
    finally:
        await server.close()
        await hub.shutdown_all(now=True)


async def _ws_execute(ws, code: str) -> tuple[dict, str]:
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": "execute_request", "session": "t", "username": "t",
              "version": "5.3", "date": ""}
    ws.write_message(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "channel": "shell",
                                 "content": {"code": code, "silent": False}}))
    out, reply, idle = "", None, False
    async with asyncio.timeout(30):
        while reply is None or not idle:
            raw = await ws.read_message()
            assert raw is not None, f"websocket closed: {ws.close_code} {ws.close_reason}"
            msg = json.loads(raw)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out += msg["content"]["text"]
            elif msg["msg_type"] == "execute_reply":
                reply = msg["content"]
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
    return reply, out
