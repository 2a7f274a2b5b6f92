"""Real Jupyter front-ends against the gateway: jupyter_server in gateway mode (what JupyterLab
runs on) and `jupyter run --existing` on the main kernel's connection file."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid

import pytest
import requests

from tests.wsclient import ChannelsClient, stdout_of
from tests.gatewaylib import GatewayProcess, JupyterServerProcess, isolated_env
from tests.toolcheck import require_module

TOKEN = "gw-token"
JS_TOKEN = "js-token"

require_module("jupyter_server")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return isolated_env(str(tmp_path_factory.mktemp("fe")))


@pytest.fixture(scope="module")
def gw(env):
    proc = GatewayProcess(["--main-kernel", "python3"], env=env, token=TOKEN)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def jserver(gw, env, tmp_path_factory):
    server = JupyterServerProcess(gw.url, TOKEN, str(tmp_path_factory.mktemp("nbroot")), env, token=JS_TOKEN)
    yield server.url
    server.stop()  # before the gateway (it would retry DELETEs against a dead gateway)


def js(method, base, path, **kw):
    return requests.request(method, base + path, headers={"Authorization": f"token {JS_TOKEN}"}, timeout=60, **kw)


def test_jupyter_server_gateway_mode_session_execute_interrupt_restart(gw, jserver):
    specs = js("GET", jserver, "/api/kernelspecs").json()
    assert specs["kernelspecs"]["python3"]["spec"]["metadata"]["debugger"] is True
    r = js("POST", jserver, "/api/sessions",
           json={"path": "demo.ipynb", "name": "demo.ipynb", "type": "notebook", "kernel": {"name": "python3"}})
    assert r.status_code == 201, r.text
    session = r.json()
    kid = session["kernel"]["id"]
    ours = requests.get(gw.url + "/api/kernels", headers=gw.headers).json()
    assert kid in [k["id"] for k in ours], "the session's kernel lives in our hub"

    # the browser's websocket, proxied by jupyter_server to ours (legacy JSON on both legs)
    c = ChannelsClient(jserver, kid, JS_TOKEN, "json", session_id=uuid.uuid4().hex)
    reply, io = c.execute("import os; v = 20; print(v * 2, os.environ.get('KERNEL_GATEWAY'))")
    assert reply["content"]["status"] == "ok" and stdout_of(io) == "40 1\n"

    msg_id = c.send("shell", "execute_request", {"code": "import time; time.sleep(60)", "silent": False})
    while c.recv(20)["msg_type"] != "execute_input":
        pass
    assert js("POST", jserver, f"/api/kernels/{kid}/interrupt").status_code == 204
    assert c.wait_reply(msg_id, 20)["content"]["ename"] == "KeyboardInterrupt"
    assert stdout_of(c.execute("print(v)")[1]).startswith("20")

    r = js("POST", jserver, f"/api/kernels/{kid}/restart")
    assert r.status_code == 200, r.text
    c.close()
    c = ChannelsClient(jserver, kid, JS_TOKEN, "json", session_id=uuid.uuid4().hex)
    reply, _ = c.execute("v")
    assert reply["content"]["ename"] == "NameError"
    c.close()

    listed = js("GET", jserver, "/api/kernels").json()
    assert kid in [k["id"] for k in listed]
    # a notebook session bound to the runner's main kernel (how JupyterLab attaches to it)
    main = requests.get(gw.url + "/api/status", headers=gw.headers).json()["main_kernel_id"]
    r = js("POST", jserver, "/api/sessions",
           json={"path": "agent.ipynb", "name": "agent.ipynb", "type": "notebook", "kernel": {"id": main}})
    assert r.status_code == 201 and r.json()["kernel"]["id"] == main, r.text
    assert main in [k["id"] for k in js("GET", jserver, "/api/kernels").json()]
    m = ChannelsClient(jserver, main, JS_TOKEN, "json", session_id=uuid.uuid4().hex)
    assert stdout_of(m.execute("print('main kernel via lab')")[1]) == "main kernel via lab\n"
    m.close()
    d = js("DELETE", jserver, f"/api/sessions/{r.json()['id']}")
    assert d.status_code == 204  # Lab lets go of the main kernel...
    assert requests.get(f"{gw.url}/api/kernels/{main}", headers=gw.headers).status_code == 200  # ...it runs on
    assert js("DELETE", jserver, f"/api/sessions/{session['id']}").status_code == 204
    assert requests.get(f"{gw.url}/api/kernels/{kid}", headers=gw.headers).status_code == 404


def test_jupyter_run_existing_shares_the_main_kernel(gw, env, tmp_path):
    main = requests.get(gw.url + "/api/status", headers=gw.headers).json()["main_kernel_id"]
    cfile = os.path.join(env["JUPYTER_RUNTIME_DIR"], f"kernel-{main}.json")
    assert os.path.exists(cfile)
    c = ChannelsClient(gw.url, main, TOKEN, "v1")
    assert c.execute("shared = 41")[0]["content"]["status"] == "ok"
    script = tmp_path / "bump.py"
    script.write_text("shared += 1\nprint('shared is', shared)\n")
    jupyter = shutil.which("jupyter-run") or shutil.which("jupyter")
    argv = [jupyter, "--existing", cfile, str(script)] if jupyter.endswith("-run") else \
        [jupyter, "run", "--existing", cfile, str(script)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert "shared is 42" in out.stdout, out.stdout + out.stderr
    # the websocket client sees the other client's work on the same kernel
    assert stdout_of(c.execute("print(shared)")[1]) == "42\n"
    c.close()


def test_a_jupyter_server_bound_to_the_main_kernel_exits_cleanly(gw, env, tmp_path):
    # jupyter_server shuts down every kernel it knows on exit and stops at any error but 404: a
    # refused DELETE of the main kernel used to leave it running after SIGTERM.
    server = JupyterServerProcess(gw.url, TOKEN, str(tmp_path), env, token=JS_TOKEN)
    main = requests.get(gw.url + "/api/status", headers=gw.headers).json()["main_kernel_id"]
    try:
        r = js("POST", server.url, "/api/sessions",
               json={"path": "agent.ipynb", "name": "agent.ipynb", "type": "notebook", "kernel": {"id": main}})
        assert r.status_code == 201, r.text
        server.proc.terminate()
        assert server.proc.wait(30) is not None
    finally:
        server.stop()
    assert requests.get(f"{gw.url}/api/kernels/{main}", headers=gw.headers).status_code == 200
