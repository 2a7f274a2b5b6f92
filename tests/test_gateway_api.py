"""The gateway's REST API, auth, CORS, errors and websocket channels, against a real standalone
gateway process and real ipykernel kernels."""
from __future__ import annotations

import http.client
import json
import os
import socket
import struct
import time
import uuid
from urllib.parse import urlparse

import pytest
import requests
import websocket

from tests.wsclient import ChannelsClient, encode_client_v1, stdout_of
from tests.gatewaylib import GatewayProcess, isolated_env

TOKEN = "s3cret-token"
ORIGIN = "https://lab.example"


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    root = tmp_path_factory.mktemp("gw")
    env = isolated_env(str(root), KRUNNER_GATEWAY_TOKEN=TOKEN)  # token from the environment
    args = [
        "--main-kernel", "python3",
        "--GatewayConfig.env_allowlist=['TEST_VAR']",
        f"--GatewayConfig.allow_origin={ORIGIN}",
        "--GatewayConfig.allow_methods=GET,POST,DELETE",
        "--GatewayConfig.allow_headers=Authorization,Content-Type",
        "--GatewayConfig.ws_max_message_size=200000",
        "--GatewayConfig.replay_buffer_timeout=30",
    ]
    proc = GatewayProcess(args, env=env)
    proc.token = TOKEN
    proc.env = env
    yield proc
    rc = proc.stop()
    assert rc == 0, "".join(proc.log[-30:])


@pytest.fixture(scope="module")
def kernel(gw):
    r = requests.post(gw.url + "/api/kernels", headers=gw.headers, json={"name": "python3"})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    yield kid
    requests.delete(f"{gw.url}/api/kernels/{kid}", headers=gw.headers)


def get(gw, path, **kw):
    return requests.get(gw.url + path, headers=kw.pop("headers", gw.headers), **kw)


def raw_request(gw, method, path, body=b"", headers=None):
    """http.client keeps paths unnormalised (for traversal tests) and lets us lie in headers."""
    u = urlparse(gw.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for k, v in {**gw.headers, **(headers or {})}.items():
        conn.putheader(k, v)
    conn.endheaders()
    if body:
        try:
            conn.send(body)
        except OSError:
            pass
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def recv_error(c, timeout=10.0):
    """The next error reply the gateway made up (other clients' iopub traffic is skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = c.recv(max(deadline - time.monotonic(), 0.01))
        if msg["channel"] != "iopub" and msg["content"].get("ename") == "GatewayError":
            return msg


def close_code(c, timeout=10.0):
    """Read until the server closes the websocket; returns its close code."""
    c.ws.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            opcode, data = c.ws.recv_data(control_frame=True)
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
    raise AssertionError("websocket was not closed")


# -- REST --------------------------------------------------------------------------------------

def test_api_requires_token(gw):
    assert get(gw, "/api").json()["version"]
    assert requests.get(gw.url + f"/api?token={TOKEN}").status_code == 200
    for headers in ({}, {"Authorization": "token wrong"}):
        r = requests.get(gw.url + "/api/kernels", headers=headers)
        assert r.status_code == 401
        assert r.json()["reason"] == "Unauthorized" and "token" in r.json()["message"]
    assert get(gw, "/no/such/thing").status_code == 404
    assert get(gw, "/no/such/thing").json()["reason"] == "Not Found"
    spec = get(gw, "/api/swagger.json").json()
    assert "/api/kernels/{kernel_id}/channels" in spec["paths"]
    assert get(gw, "/api/swagger.yaml").headers["Content-Type"] == "text/yaml"


def test_cors_and_origin(gw):
    pre = requests.options(gw.url + "/api/kernels", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 200  # preflights carry no credentials
    assert pre.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert pre.headers["Access-Control-Allow-Methods"] == "GET,POST,DELETE"
    ok = get(gw, "/api/kernels", headers={**gw.headers, "Origin": ORIGIN})
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    bad = get(gw, "/api/kernels", headers={**gw.headers, "Origin": "https://evil.example"})
    assert bad.status_code == 403 and "origin" in bad.json()["message"]


def test_kernelspecs_pass_metadata_and_logos(gw):
    body = get(gw, "/api/kernelspecs").json()
    spec = body["kernelspecs"]["python3"]
    assert spec["spec"]["metadata"]["debugger"] is True
    assert body["default"] in body["kernelspecs"]
    assert get(gw, "/api/kernelspecs/python3").json()["spec"] == spec["spec"]
    assert get(gw, "/api/kernelspecs/nope").status_code == 404
    logo = spec["resources"]["logo-64x64"]
    r = get(gw, logo)
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png" and r.content[:4] == b"\x89PNG"


@pytest.mark.parametrize("path", [
    "/kernelspecs/python3/../../../../etc/passwd",
    "/kernelspecs/python3/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/kernelspecs/python3/%2Fetc%2Fpasswd",
])
def test_kernelspec_resources_refuse_traversal(gw, path):
    status, data = raw_request(gw, "GET", path)
    assert status in (403, 404), data
    assert b"root:" not in data


def test_kernel_lifecycle_and_errors(gw):
    listed = get(gw, "/api/kernels").json()
    main = [k for k in listed if k["name"] == "python3"]
    assert main, "the main kernel is listed"
    r = requests.post(gw.url + "/api/kernels", headers=gw.headers, json={})
    assert r.status_code == 201
    model = r.json()
    assert set(model) >= {"id", "name", "last_activity", "execution_state", "connections"}
    assert r.headers["Location"] == f"/api/kernels/{model['id']}"
    kid = model["id"]
    assert os.path.exists(os.path.join(gw.env["JUPYTER_RUNTIME_DIR"], f"kernel-{kid}.json"))
    assert get(gw, f"/api/kernels/{kid}").json()["id"] == kid
    assert kid in [k["id"] for k in get(gw, "/api/kernels").json()]
    assert requests.delete(f"{gw.url}/api/kernels/{kid}", headers=gw.headers).status_code == 204
    r = get(gw, f"/api/kernels/{kid}")
    assert r.status_code == 404 and kid in r.json()["message"]
    for method, path in (("post", "/interrupt"), ("post", "/restart"), ("delete", "")):
        r = getattr(requests, method)(f"{gw.url}/api/kernels/{kid}{path}", headers=gw.headers)
        assert r.status_code == 404, (method, path, r.text)


def test_a_delete_of_the_main_kernel_only_releases_it(gw):
    status = get(gw, "/api/status").json()
    main = status["main_kernel_id"]
    assert main
    pid_before = get(gw, f"/api/kernels/{main}").json()
    r = requests.delete(f"{gw.url}/api/kernels/{main}", headers=gw.headers)
    assert r.status_code == 204 and r.headers.get("X-Krunner-Kernel") == "kept"
    assert get(gw, f"/api/kernels/{main}").json()["id"] == pid_before["id"]  # still there, still running
    c = ChannelsClient(gw.url, main, TOKEN, "v1")
    try:
        assert c.execute("1 + 1")[0]["content"]["status"] == "ok"
    finally:
        c.close()


@pytest.mark.parametrize("body, status", [
    (b"{not json", 400),
    (b"[1, 2]", 400),
    (json.dumps({"name": 42}).encode(), 400),
    (json.dumps({"env": ["A=1"]}).encode(), 400),
    (json.dumps({"env": {"KERNEL_X": 1}}).encode(), 400),
    (json.dumps({"name": "no-such-spec"}).encode(), 404),
])
def test_bad_bodies(gw, body, status):
    r = requests.post(gw.url + "/api/kernels", headers=gw.headers, data=body)
    assert r.status_code == status
    assert r.json()["message"]


def test_huge_body_is_refused_and_server_keeps_serving(gw):
    status, data = raw_request(gw, "POST", "/api/kernels", headers={"Content-Length": str(50 << 20)})
    assert status == 413 and b"larger than" in data
    r = requests.post(gw.url + "/api/kernels", headers=gw.headers, data=b" " * (2 << 20))
    assert r.status_code == 413
    assert get(gw, "/api").status_code == 200


def test_env_rules(gw):
    env = {"KERNEL_FOO": "x", "TEST_VAR": "y", "OTHER": "z", "KERNEL_WORKING_DIR": gw.env["HOME"]}
    r = requests.post(gw.url + "/api/kernels", headers=gw.headers, json={"name": "python3", "env": env})
    kid = r.json()["id"]
    try:
        c = ChannelsClient(gw.url, kid, TOKEN)
        _, io = c.execute(
            "import os; print({k: os.environ.get(k) for k in "
            "('KERNEL_FOO','TEST_VAR','OTHER','HOME','KERNEL_GATEWAY','KRUNNER_GATEWAY_TOKEN')}, os.getcwd())")
        c.close()
        seen, cwd = stdout_of(io).rsplit("} ", 1)
        seen = eval(seen + "}")
        assert seen == {"KERNEL_FOO": "x", "TEST_VAR": "y", "OTHER": None, "HOME": gw.env["HOME"],
                        "KERNEL_GATEWAY": "1", "KRUNNER_GATEWAY_TOKEN": None}
        assert cwd.strip() == os.path.realpath(gw.env["HOME"])
    finally:
        requests.delete(f"{gw.url}/api/kernels/{kid}", headers=gw.headers)


def test_sessions_crud(gw):
    r = requests.post(gw.url + "/api/sessions", headers=gw.headers,
                      json={"path": "a.ipynb", "type": "notebook", "name": "a.ipynb", "kernel": {"name": "python3"}})
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["path"] == "a.ipynb" and s["kernel"]["name"] == "python3" and s["notebook"]["path"] == "a.ipynb"
    assert s["id"] in [x["id"] for x in get(gw, "/api/sessions").json()]
    r = requests.patch(f"{gw.url}/api/sessions/{s['id']}", headers=gw.headers, json={"path": "b.ipynb"})
    assert r.json()["path"] == "b.ipynb" and r.json()["kernel"]["id"] == s["kernel"]["id"]
    assert get(gw, f"/api/sessions/{s['id']}").json()["path"] == "b.ipynb"
    assert requests.delete(f"{gw.url}/api/sessions/{s['id']}", headers=gw.headers).status_code == 204
    assert get(gw, f"/api/sessions/{s['id']}").status_code == 404
    assert get(gw, f"/api/kernels/{s['kernel']['id']}").status_code == 404  # its kernel went with it


# -- websocket ---------------------------------------------------------------------------------

@pytest.mark.parametrize("proto", ["v1", "json"])
def test_ws_execute_and_kernel_info(gw, kernel, proto):
    c = ChannelsClient(gw.url, kernel, TOKEN, proto)
    assert c.subprotocol == ("v1.kernel.websocket.jupyter.org" if proto == "v1" else None)
    info = c.request("shell", "kernel_info_request")
    assert info["msg_type"] == "kernel_info_reply" and info["content"]["language_info"]["name"] == "python"
    ctl = c.request("control", "kernel_info_request")
    assert ctl["channel"] == "control"
    reply, io = c.execute("print(6 * 7)")
    assert reply["content"]["status"] == "ok" and stdout_of(io) == "42\n"
    assert {m["msg_type"] for m in io} >= {"status", "execute_input", "stream"}
    c.close()


COMM_ECHO = """
def _echo_target(comm, open_msg):
    @comm.on_msg
    def _(msg):
        comm.send({"n": len(msg["buffers"])}, buffers=[bytes(b)[::-1] for b in msg["buffers"]])
get_ipython().kernel.comm_manager.register_target("echo", _echo_target)
"""


@pytest.mark.parametrize("proto", ["v1", "json"])
def test_ws_binary_buffers_both_ways(gw, kernel, proto):
    c = ChannelsClient(gw.url, kernel, TOKEN, proto)
    assert c.execute(COMM_ECHO)[0]["content"]["status"] == "ok"
    comm_id = uuid.uuid4().hex
    c.send("shell", "comm_open", {"comm_id": comm_id, "target_name": "echo", "data": {}})
    payload = [bytes(range(256)), b"\xff\x00binary"]
    c.send("shell", "comm_msg", {"comm_id": comm_id, "data": {}}, buffers=payload)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        msg = c.recv(20)
        if msg["msg_type"] == "comm_msg" and msg["content"]["comm_id"] == comm_id:
            break
    assert msg["content"]["data"] == {"n": 2}
    assert [bytes(b) for b in msg["buffers"]] == [p[::-1] for p in payload]
    c.close()


def test_ws_stdin_input(gw, kernel):
    c = ChannelsClient(gw.url, kernel, TOKEN, "v1")
    msg_id = c.send("shell", "execute_request", {"code": "print('got', input('name? '))", "silent": False,
                                                 "allow_stdin": True, "store_history": False})
    req = c.recv(20)
    while req["channel"] != "stdin":
        req = c.recv(20)
    assert req["msg_type"] == "input_request" and req["content"]["prompt"] == "name? "
    c.send("stdin", "input_reply", {"value": "krunner"})
    out = []
    reply = c.wait_reply(msg_id, 20, collect=out)
    assert reply["content"]["status"] == "ok"
    deadline = time.monotonic() + 10
    while "got krunner" not in stdout_of(out) and time.monotonic() < deadline:
        out.append(c.recv(10))
    assert "got krunner" in stdout_of(out)
    c.close()


def test_ws_interrupt_and_restart_via_rest(gw):
    kid = requests.post(gw.url + "/api/kernels", headers=gw.headers, json={"name": "python3"}).json()["id"]
    try:
        c = ChannelsClient(gw.url, kid, TOKEN, "json")
        c.execute("x = 41")
        msg_id = c.send("shell", "execute_request", {"code": "import time; time.sleep(60)", "silent": False})
        io = []
        while not any(m["msg_type"] == "execute_input" for m in io):
            io.append(c.recv(20))
        t0 = time.monotonic()
        assert requests.post(f"{gw.url}/api/kernels/{kid}/interrupt", headers=gw.headers).status_code == 204
        reply = c.wait_reply(msg_id, 20)
        assert reply["content"]["ename"] == "KeyboardInterrupt" and time.monotonic() - t0 < 10
        rep, io = c.execute("print(x + 1)")
        assert stdout_of(io).startswith("42\n"), (rep, io)  # state survived the interrupt
        r = requests.post(f"{gw.url}/api/kernels/{kid}/restart", headers=gw.headers)
        assert r.status_code == 200 and r.json()["id"] == kid
        c.close()
        c = ChannelsClient(gw.url, kid, TOKEN, "v1")
        reply, _ = c.execute("x")
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "NameError"
        c.close()
    finally:
        requests.delete(f"{gw.url}/api/kernels/{kid}", headers=gw.headers)


def test_ws_replay_after_reconnect(gw, kernel):
    sid = uuid.uuid4().hex
    c = ChannelsClient(gw.url, kernel, TOKEN, "v1", session_id=sid)
    msg_id = c.send("shell", "execute_request", {
        "code": "import time\nfor i in range(4):\n    print('tick', i, flush=True); time.sleep(0.3)",
        "silent": False})
    while c.recv(20)["msg_type"] != "execute_input":
        pass
    c.close()
    time.sleep(2.0)  # the cell finishes while nobody is connected
    c = ChannelsClient(gw.url, kernel, TOKEN, "json", session_id=sid)
    got = []
    reply = c.wait_reply(msg_id, 10, collect=got)
    assert reply["content"]["status"] == "ok"
    while not any(m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                  and m["parent_header"].get("msg_id") == msg_id for m in got):
        got.append(c.recv(10))
    assert "tick 3" in stdout_of([m for m in got if m["parent_header"].get("msg_id") == msg_id])
    c.close()


def test_ws_same_session_replaces_stale_connection(gw, kernel):
    sid = uuid.uuid4().hex
    first = ChannelsClient(gw.url, kernel, TOKEN, "v1", session_id=sid)
    second = ChannelsClient(gw.url, kernel, TOKEN, "v1", session_id=sid)
    assert close_code(first) == 1000
    assert second.execute("1")[0]["content"]["status"] == "ok"
    second.close()


def test_ws_bad_messages_get_error_replies(gw, kernel):
    c = ChannelsClient(gw.url, kernel, TOKEN, "json")
    c.ws.send("this is not json")
    bad = recv_error(c)
    assert bad["msg_type"] == "gateway_error" and "not valid JSON" in bad["content"]["evalue"]
    header = {"msg_id": "m-1", "msg_type": "execute_request", "session": c.session_id, "username": "u",
              "version": "5.3", "date": ""}
    c.ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": {"code": "1"},
                          "channel": "nope"}))
    bad = recv_error(c)
    assert bad["msg_type"] == "execute_reply" and bad["parent_header"]["msg_id"] == "m-1"
    assert bad["content"]["status"] == "error" and "unknown channel" in bad["content"]["evalue"]
    c.ws.send(json.dumps({"header": {"msg_id": "x"}, "content": {}}))
    assert "msg_type" in recv_error(c)["content"]["evalue"]
    c.ws.send_binary(b"\x00\x00\x00\x09garbage")
    assert recv_error(c)["msg_type"] == "gateway_error"
    assert stdout_of(c.execute("print('still here')")[1]) == "still here\n"
    c.close()

    v1 = ChannelsClient(gw.url, kernel, TOKEN, "v1")
    v1.ws.send_binary(struct.pack("<Q", 99) + b"\x00" * 20)
    assert recv_error(v1)["msg_type"] == "gateway_error"
    v1.ws.send("text on v1")
    assert "binary" in recv_error(v1)["content"]["evalue"]
    msg = {"header": dict(header, msg_id="m-2"), "parent_header": {}, "metadata": {}, "content": {}}
    v1.ws.send_binary(encode_client_v1("iopub", msg))
    bad = recv_error(v1)
    assert bad["parent_header"]["msg_id"] == "m-2" and "unknown channel" in bad["content"]["evalue"]
    # a message over ws_max_message_size closes that connection only
    v1.ws.send_binary(encode_client_v1("shell", dict(msg, buffers=[b"x" * 300000])))
    assert close_code(v1) in (1009, None)
    again = ChannelsClient(gw.url, kernel, TOKEN, "v1")
    assert again.execute("1 + 1")[0]["content"]["status"] == "ok"
    again.close()


def test_ws_auth_and_unknown_kernel(gw, kernel):
    base = gw.url.replace("http", "ws", 1)
    with pytest.raises(websocket.WebSocketBadStatusException) as exc:
        websocket.create_connection(f"{base}/api/kernels/{kernel}/channels?session_id=x&token=wrong", timeout=10)
    assert exc.value.status_code == 401
    with pytest.raises(websocket.WebSocketBadStatusException) as exc:
        websocket.create_connection(f"{base}/api/kernels/{uuid.uuid4()}/channels?token={TOKEN}", timeout=10)
    assert exc.value.status_code == 404
    plain = get(gw, f"/api/kernels/{kernel}/channels")
    assert plain.status_code == 400 and "websocket" in plain.json()["message"]
    ws = websocket.create_connection(f"{base}/api/kernels/{kernel}/channels?session_id=y",
                                     header=[f"Authorization: token {TOKEN}"], timeout=10)
    ws.close()


def test_listing_reports_connections_and_activity(gw, kernel):
    c = ChannelsClient(gw.url, kernel, TOKEN, "v1")
    msg_id = c.send("shell", "execute_request", {"code": "import time; time.sleep(1.5)", "silent": False})
    time.sleep(0.4)
    # a control request answered meanwhile (debugger, nudges) publishes busy/idle of its own
    assert c.request("control", "kernel_info_request")["msg_type"] == "kernel_info_reply"
    model = get(gw, f"/api/kernels/{kernel}").json()
    assert model["execution_state"] == "busy" and model["connections"] >= 1
    c.wait_reply(msg_id, 20)
    time.sleep(0.2)
    assert get(gw, f"/api/kernels/{kernel}").json()["execution_state"] == "idle"
    c.close()


def test_kernel_death_is_announced_and_kernel_comes_back(gw):
    kid = requests.post(gw.url + "/api/kernels", headers=gw.headers, json={"name": "python3"}).json()["id"]
    try:
        c = ChannelsClient(gw.url, kid, TOKEN, "json")
        c.execute("x = 1")
        c.send("shell", "execute_request", {"code": "import os; os._exit(1)", "silent": False})
        deadline = time.monotonic() + 30
        states = []
        while "restarting" not in states and time.monotonic() < deadline:
            msg = c.recv(30)
            if msg["msg_type"] == "status":
                states.append(msg["content"]["execution_state"])
        assert "restarting" in states
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the same websocket works with the restarted kernel
            try:
                reply, _ = c.execute("x", timeout=5)
                break
            except websocket.WebSocketTimeoutException:
                continue
        assert reply["content"]["ename"] == "NameError"
        c.close()
    finally:
        requests.delete(f"{gw.url}/api/kernels/{kid}", headers=gw.headers)
