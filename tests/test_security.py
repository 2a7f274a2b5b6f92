"""Origin checks and token comparison (docs/security.md): the web terminal and the gateway's kernel
websockets refuse a page from another origin, accept their own host, the allow-list and
non-browser clients; an "attack page" served from another loopback port cannot drive either."""
from __future__ import annotations

import asyncio
import hmac
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import websocket

from tests.gatewaylib import GatewayProcess, isolated_env
from ai.backend.kernel.origin import OriginPolicy, same_host
from ai.backend.kernel.services import terminal
from ai.backend.kernel.services.intrinsic import ttyd_argv
from tests.runnerlib import RunnerProcess, free_port
from tests.toolcheck import require_module

PROXY = "https://proxy.example:8443"  # stands for the agent's app-proxy origin
TOKEN = "tok-" + "x" * 28


# ------------------------------------------------------------------------------- the policy
def test_origin_policy_rules() -> None:
    policy = OriginPolicy([PROXY, "https://*.apps.example"], pattern=r"https://lab\d+\.example")
    host = "127.0.0.1:8888"
    assert policy.allows(None, host) and policy.allows("", host)  # non-browser clients
    assert policy.allows("http://127.0.0.1:8888", host)
    assert not policy.allows("http://127.0.0.1:9999", host)  # another port is another origin
    assert not policy.allows("http://localhost:8888", host)
    assert not policy.allows("null", host)  # sandboxed iframes, file:// pages
    assert policy.allows(PROXY, host) and policy.allows(PROXY + "/", host)
    assert not policy.allows("https://proxy.example", host)
    assert policy.allows("https://u1.apps.example", host)
    assert not policy.allows("https://u1.apps.example.evil.test", host)
    assert not policy.allows("https://evil.test/x.apps.example", host)
    assert policy.allows("https://lab42.example", host)
    assert not policy.allows("https://lab42.example.evil.test", host)  # the pattern is anchored
    assert same_host("http://example.com", "example.com:80") and same_host("https://h:443", "h")
    assert OriginPolicy(["*"]).allows("https://anything.test", host)


# ------------------------------------------------------------------------------- helpers
def ws_status(url: str, origin: str | None, **kw) -> int:
    """HTTP status of a websocket handshake sent with `origin` (101 = accepted)."""
    headers = [f"Origin: {origin}"] if origin else []
    try:
        ws = websocket.create_connection(url, header=headers, suppress_origin=True, timeout=10, **kw)
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code
    status = ws.getstatus()
    ws.close()
    return status


@pytest.fixture
def attack_page() -> Iterator[str]:
    """A page on another loopback port, as a malicious site the user visits would be."""
    html = b"<script>new WebSocket('ws://127.0.0.1:7681/ws')</script>"

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    assert requests.get(origin).content == html
    yield origin
    server.shutdown()
    server.server_close()


# ------------------------------------------------------------------------------- web terminal
async def test_web_terminal_refuses_foreign_origins(tmp_path: Path, attack_page: str) -> None:
    require_module("terminado")
    port = free_port()
    term = terminal.WebTerminal(port, "127.0.0.1", ["/bin/sh"], {"PATH": "/usr/bin:/bin"}, tmp_path,
                                allow_origins=[PROXY])
    await term.start()
    try:
        own = f"http://127.0.0.1:{port}"
        for path, kw in (("/websocket", {}), ("/ws", {"subprotocols": ["tty"]})):
            url = f"ws://127.0.0.1:{port}{path}"
            for origin in (attack_page, "https://evil.example", "null", f"http://localhost:{port}"):
                assert await asyncio.to_thread(ws_status, url, origin, **kw) == 403, (path, origin)
            for origin in (own, PROXY, None):
                assert await asyncio.to_thread(ws_status, url, origin, **kw) == 101, (path, origin)

        def drive(origin: str) -> str:
            """Type a command through the terminado dialect; return what the shell printed."""
            ws = websocket.create_connection(f"ws://127.0.0.1:{port}/websocket", header=[f"Origin: {origin}"],
                                             suppress_origin=True, timeout=10)
            ws.send(json.dumps(["stdin", "echo $((6*7))\r"]))
            seen, deadline = "", time.monotonic() + 10
            while "42" not in seen and time.monotonic() < deadline:
                msg = json.loads(ws.recv())
                seen += msg[1] if msg[0] == "stdout" else ""
            ws.close()
            return seen

        assert "42" in await asyncio.to_thread(drive, PROXY)
    finally:
        await term.stop()


async def test_runner_terminal_takes_the_allow_list_from_its_option(runner_dirs: dict[str, Path]) -> None:
    """A real runner: KRUNNER_ALLOW_ORIGINS (ServiceManager.allow_origins) reaches its web terminal."""
    require_module("terminado")
    proc = RunnerProcess(lang="python", dirs=runner_dirs,
                         env={"KRUNNER_ALLOW_ORIGINS": f"{PROXY}, https://*.apps.example", "PATH": "/usr/bin:/bin"})
    await proc.start()
    try:
        url = f"ws://127.0.0.1:{proc.intrinsic_ports['ttyd']}/websocket"
        deadline = time.monotonic() + 30
        while True:  # the terminal starts with the services, after `status` is answered
            try:
                status = await asyncio.to_thread(ws_status, url, "https://a.apps.example")
                break
            except OSError:
                assert time.monotonic() < deadline, proc.log()
                await asyncio.sleep(0.2)
        assert status == 101
        assert await asyncio.to_thread(ws_status, url, PROXY) == 101
        assert await asyncio.to_thread(ws_status, url, "https://evil.example") == 403
    finally:
        await proc.stop()


def test_ttyd_checks_origin_unless_an_allow_list_is_set(monkeypatch) -> None:
    monkeypatch.delenv("KRUNNER_ALLOW_ORIGINS", raising=False)
    assert "--check-origin" in ttyd_argv("ttyd", 7681, "127.0.0.1", None)
    # ttyd can only compare with its own host: with an allow-list it could not serve the proxy
    assert "--check-origin" not in ttyd_argv("ttyd", 7681, "127.0.0.1", None, allow_origins=[PROXY])


# ------------------------------------------------------------------------------- gateway
@pytest.fixture(scope="module")
def gw(tmp_path_factory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("gw-sec")
    env = isolated_env(str(root), KRUNNER_ALLOW_ORIGINS=f"{PROXY},https://*.apps.example")
    proc = GatewayProcess(["--main-kernel", "python3"], env=env, token=TOKEN)
    yield proc
    assert proc.stop() == 0, "".join(proc.log[-30:])


@pytest.fixture(scope="module")
def kernel_id(gw: GatewayProcess) -> Iterator[str]:
    r = requests.post(gw.url + "/api/kernels", headers=gw.headers, json={"name": "python3"})
    assert r.status_code == 201, r.text
    yield r.json()["id"]


def test_gateway_kernel_websocket_origin(gw: GatewayProcess, kernel_id: str, attack_page: str) -> None:
    base = gw.url.replace("http://", "ws://")
    url = f"{base}/api/kernels/{kernel_id}/channels?token={TOKEN}"
    for origin in (attack_page, "https://evil.example", "null", "https://x.apps.example.evil.test"):
        assert ws_status(url, origin) == 403, origin
    own = gw.url.split("/api")[0].rstrip("/")
    own = "http://" + own.split("://", 1)[1].split("/", 1)[0]
    for origin in (own, PROXY, "https://u7.apps.example", None):
        assert ws_status(url, origin) == 101, origin
    # the attack page's fetch() of the REST API: refused too, and no CORS grant
    r = requests.get(gw.url + "/api/kernels", headers={**gw.headers, "Origin": attack_page})
    assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r.headers


def execute_json(url: str, origin: str, code: str, timeout: float = 30) -> tuple[dict, str]:
    """Run `code` over the legacy JSON dialect; (execute_reply content, stdout)."""
    ws = websocket.create_connection(url, header=[f"Origin: {origin}"], suppress_origin=True, timeout=timeout)
    try:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": "execute_request", "session": uuid.uuid4().hex,
                  "username": "t", "version": "5.3", "date": ""}
        ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "channel": "shell",
                            "content": {"code": code, "silent": False}}))
        out, reply = "", None
        while reply is None:
            msg = json.loads(ws.recv())
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out += msg["content"]["text"]
            elif msg["msg_type"] == "execute_reply":
                reply = msg["content"]
        return reply, out
    finally:
        ws.close()


def test_gateway_allow_listed_origin_runs_code(gw: GatewayProcess, kernel_id: str) -> None:
    base = gw.url.replace("http://", "ws://")
    reply, out = execute_json(f"{base}/api/kernels/{kernel_id}/channels?token={TOKEN}", PROXY, "print(6 * 7)")
    assert reply["status"] == "ok" and "42" in out


def test_gateway_token_is_compared_in_constant_time(gw: GatewayProcess, kernel_id: str, monkeypatch) -> None:
    # every guess, however many leading bytes it has right, gets the same 401
    for guess in ("", "t", TOKEN[:-1], TOKEN[:-1] + "y", TOKEN + "x"):
        r = requests.get(gw.url + "/api/kernels", headers={"Authorization": f"token {guess}"})
        assert r.status_code == 401, guess
    assert requests.get(gw.url + "/api/kernels", headers=gw.headers).status_code == 200
    # and the comparison is hmac.compare_digest (its time does not depend on the matching prefix)
    from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

    from ai.backend.kernel.gateway import auth
    from ai.backend.kernel.gateway.config import GatewayConfig

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    request = HTTPServerRequest(start_line=RequestStartLine("GET", "/api?token=abc", "HTTP/1.1"),
                                headers=HTTPHeaders({"Host": "127.0.0.1:1"}))
    assert not auth.authenticated(request, GatewayConfig(token="abd"))
    assert calls == [(b"abc", b"abd")]
