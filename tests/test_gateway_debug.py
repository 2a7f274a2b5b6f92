"""A scripted debugger session (what JupyterLab's debugger sends) through the gateway websocket
against ipykernel: debug_request/reply on control, debug_event on iopub."""
from __future__ import annotations

import time

import pytest
import requests

from tests.wsclient import ChannelsClient
from tests.gatewaylib import GatewayProcess, JupyterServerProcess, isolated_env
from tests.toolcheck import require_module

require_module("debugpy")

TOKEN = "dbg"
CODE = "a = 10\nb = a * 2\nc = a + b\nprint(c)\n"


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    env = isolated_env(str(tmp_path_factory.mktemp("dbg")))
    proc = GatewayProcess(env=env, token=TOKEN)
    proc.env = env
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def jserver(gw, tmp_path_factory):
    require_module("jupyter_server")
    server = JupyterServerProcess(gw.url, TOKEN, str(tmp_path_factory.mktemp("dbgroot")), gw.env)
    yield server
    server.stop()


class Debugger:
    """Sends DAP requests on control and sorts whatever comes back."""

    def __init__(self, client: ChannelsClient) -> None:
        self.c = client
        self.seq = 0
        self.replies: dict[str, dict] = {}
        self.events: list[dict] = []
        self.other: list[dict] = []

    def pump(self, timeout: float) -> None:
        msg = self.c.recv(timeout)
        if msg["msg_type"] == "debug_event":
            assert msg["channel"] == "iopub"
            self.events.append(msg["content"])
        elif msg["channel"] in ("shell", "control"):
            self.replies[msg["parent_header"].get("msg_id")] = msg
        else:
            self.other.append(msg)

    def wait(self, pred, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while True:
            found = pred()
            if found:
                return found
            self.pump(max(deadline - time.monotonic(), 0.01))

    def dap(self, command: str, arguments: dict | None = None) -> dict:
        self.seq += 1
        msg_id = self.c.send("control", "debug_request", {
            "type": "request", "seq": self.seq, "command": command, "arguments": arguments or {}})
        reply = self.wait(lambda: self.replies.get(msg_id))
        assert reply["channel"] == "control" and reply["msg_type"] == "debug_reply"
        assert reply["content"]["success"], (command, reply["content"])
        return reply["content"].get("body") or {}

    def event(self, name: str) -> dict:
        return self.wait(lambda: next((e for e in self.events if e.get("event") == name), None))


@pytest.mark.parametrize("route", ["v1", "json", "jupyter_server"])
def test_debug_session_through_websocket(gw, route, request):
    if route == "jupyter_server":  # JupyterLab's path: browser -> jupyter_server -> our gateway
        js = request.getfixturevalue("jserver")
        kid = requests.post(js.url + "/api/kernels", headers=js.headers, json={"name": "python3"}).json()["id"]
    else:
        kid = requests.post(gw.url + "/api/kernels", headers=gw.headers, json={"name": "python3"}).json()["id"]
    try:
        if route == "jupyter_server":
            d = Debugger(ChannelsClient(js.url, kid, js.token, "json"))
        else:
            d = Debugger(ChannelsClient(gw.url, kid, TOKEN, route))
        info = d.dap("debugInfo")
        assert info["isStarted"] is False
        d.dap("initialize", {
            "clientID": "jupyterlab", "clientName": "JupyterLab", "adapterID": "python", "pathFormat": "path",
            "linesStartAt1": True, "columnsStartAt1": True, "supportsVariableType": True,
            "supportsVariablePaging": True, "supportsRunInTerminalRequest": True, "locale": "en"})
        d.dap("attach")
        assert d.dap("debugInfo")["isStarted"] is True
        path = d.dap("dumpCell", {"code": CODE})["sourcePath"]
        bps = d.dap("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": 3}],
                                       "sourceModified": False})["breakpoints"]
        assert bps[0]["verified"] is True
        d.dap("configurationDone")

        exec_id = d.c.send("shell", "execute_request", {"code": CODE, "silent": False, "store_history": False})
        stopped = d.event("stopped")["body"]
        assert stopped["reason"] == "breakpoint"
        frames = d.dap("stackTrace", {"threadId": stopped["threadId"]})["stackFrames"]
        assert frames[0]["line"] == 3 and frames[0]["source"]["path"] == path
        scopes = d.dap("scopes", {"frameId": frames[0]["id"]})["scopes"]
        local = next(s for s in scopes if s["name"] == "Locals")
        values = {v["name"]: v["value"] for v in d.dap("variables", {"variablesReference": local["variablesReference"]})["variables"]}
        assert values["a"] == "10" and values["b"] == "20" and "c" not in values
        d.dap("continue", {"threadId": stopped["threadId"]})
        reply = d.wait(lambda: d.replies.get(exec_id))
        assert reply["content"]["status"] == "ok"
        d.wait(lambda: any(m["msg_type"] == "stream" and m["content"]["text"] == "30\n" for m in d.other))
        d.dap("disconnect", {"restart": False, "terminateDebuggee": False})
        d.c.close()
    finally:
        requests.delete(f"{gw.url}/api/kernels/{kid}", headers=gw.headers)
