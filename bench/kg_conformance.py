#!/usr/bin/env python3
"""Run Jupyter Kernel Gateway 3.0.1's own websocket-mode tests, black-box, against the gateway of
a real runner started the way the agent starts it (`python -m ai.backend.kernel ... python`, with
its main kernel up). Nothing of Kernel Gateway is committed here: its sdist is downloaded from
PyPI at run time and only its fixtures are replaced (by the adapter below, our code).

    python3 bench/kg_conformance.py [--work DIR] [--list-main-kernel] [-- extra pytest args]

Result and the deliberate differences: docs/conformance.md. Needs network access to PyPI once
(the venv and sdist are cached in --work).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KG_VERSION = "3.0.1"
# Tests that build Kernel Gateway's own objects in-process and never reach a gateway: left out so
# that the count is about our gateway.
IN_PROCESS_ONLY = [
    "tests/test_jupyter_websocket.py::TestPrespawnKernels::test_prespawn_max_conflict",
    "tests/test_jupyter_websocket.py::TestBadSeedURI::test_seed_kernel_not_available",
    "tests/test_jupyter_websocket.py::TestSessionApi::test_session_api",
]

ADAPTER = r'''
"""Adapter (krunner-bridge): Kernel Gateway's tests against an EXTERNAL runner's gateway.
Only fixtures are replaced; the test bodies are Kernel Gateway's, untouched."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import requests
import tornado.httpclient
import tornado.websocket
from jupyter_server.utils import url_escape, url_path_join

pytest_plugins = ["pytest_jupyter.jupyter_core"]

REPO = os.environ["KRUNNER_REPO"]
LIST_MAIN_KERNEL = os.environ.get("KRUNNER_LIST_MAIN_KERNEL", "False")
DEFAULT_TOKEN = "conformance-token"
ARGV = {  # Kernel Gateway option -> our GatewayConfig trait
    "--JupyterWebsocketPersonality.list_kernels": "list_kernels",
    "--JupyterWebsocketPersonality.env_whitelist": "env_allowlist",
    "--KernelGatewayApp.default_kernel_name": "default_kernel_name",
}
SETTINGS = {  # jp_web_app.settings keys Kernel Gateway's tests write -> our GatewayConfig trait
    "allow_origin": "allow_origin", "kg_allow_origin": "allow_origin",
    "kg_allow_credentials": "allow_credentials", "kg_allow_headers": "allow_headers",
    "kg_allow_methods": "allow_methods", "kg_expose_headers": "expose_headers",
    "kg_max_age": "max_age", "kg_list_kernels": "list_kernels", "kg_max_kernels": "max_kernels",
}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runner:
    """A runner process with its gateway on, (re)started lazily with the flags collected so far."""

    def __init__(self, root, flags, token):
        self.root, self.flags, self.token = Path(root), dict(flags), token
        self.proc = None
        self.port = None
        self.dirty = True

    def ensure(self):
        if self.dirty or self.proc is None:
            self.stop()
            self._start()
            self.dirty = False
        return self

    def _start(self):
        dirs = {n: self.root / n for n in ("work", "config", "runtime")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        argv = [sys.executable, "-m", "ai.backend.kernel",
                "--replin-port", str(_free_port()), "--replout-port", str(_free_port()), "--bind-ip", "127.0.0.1",
                "--work-dir", str(dirs["work"]), "--config-dir", str(dirs["config"]),
                "--runtime-dir", str(dirs["runtime"]), "--user-input-socket", str(dirs["runtime"] / "input.sock"),
                "--service-defs-dir", str(dirs["config"] / "service-defs"),
                "--gateway-port", str(self.port), "--gateway-token", self.token,
                f"--GatewayConfig.list_main_kernel={LIST_MAIN_KERNEL}",
                *[f"--GatewayConfig.{k}={v}" for k, v in self.flags.items()], "python"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])),
               "KRUNNER_INTRINSIC_SERVICES": ""}
        self.log = open(self.root / f"runner-{self.port}.log", "wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the gateway answers and the main kernel is up
            assert self.proc.poll() is None, (self.root / f"runner-{self.port}.log").read_text()
            try:
                base = "/" + self.flags.get("base_url", "/").strip("/") + "/"
                status = requests.get(f"http://127.0.0.1:{self.port}{base.replace('//', '/')}api/status", timeout=2,
                                      headers={"Authorization": f"token {self.token}"})
                if status.ok and status.json().get("main_kernel_id"):
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the runner's gateway did not come up")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


class _Settings(dict):
    def __init__(self, runner):
        super().__init__()
        self.runner = runner

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if key not in SETTINGS:
            pytest.skip(f"Kernel-Gateway-only setting {key}")
        self.runner.flags[SETTINGS[key]] = value
        self.runner.dirty = True


class _App:
    def __init__(self, runner):
        self.settings = _Settings(runner)


@pytest.fixture
def jp_base_url():
    return "/"


@pytest.fixture
def jp_argv():
    return []


@pytest.fixture
def jp_server_config():
    return {}


@pytest.fixture
def runner(jp_argv, jp_server_config, jp_base_url, tmp_path):
    flags = {"list_kernels": False}  # Kernel Gateway's default
    for arg in jp_argv:
        key, _, value = arg.partition("=")
        if key not in ARGV:
            pytest.skip(f"Kernel-Gateway-only option {arg}")
        flags[ARGV[key]] = value
    token = DEFAULT_TOKEN
    for key, value in dict((jp_server_config or {}).get("KernelGatewayApp", {})).items():
        if key == "auth_token":
            token = value
        elif not (key == "api" and value == "kernel_gateway.jupyter_websocket"):
            pytest.skip(f"Kernel-Gateway-only config {key}={value}")
    if jp_base_url.strip("/"):
        flags["base_url"] = jp_base_url
    r = Runner(tmp_path, flags, token)
    yield r
    r.stop()


@pytest.fixture
def jp_web_app(runner):
    return _App(runner)


@pytest.fixture
def jp_configurable_serverapp():
    pytest.skip("needs the in-process KernelGatewayApp")


@pytest.fixture
def jp_auth_header(runner):
    return {"Authorization": f"token {runner.token}"}


@pytest.fixture
def jp_http_port(runner):
    return runner.ensure().port


def _url(runner, scheme, base_url, parts, params):
    path = url_path_join(base_url, url_escape(url_path_join(*parts)))
    query = urllib.parse.urlencode(params or {})
    return f"{scheme}://127.0.0.1:{runner.ensure().port}{path}" + (f"?{query}" if query else "")


@pytest.fixture
def jp_fetch(runner, jp_auth_header, jp_base_url):
    def fetch(*parts, headers=None, params=None, **kwargs):
        headers = dict(headers or {})
        for key, value in jp_auth_header.items():
            headers.setdefault(key, value)
        timeout = kwargs.pop("request_timeout", 60)
        url = _url(runner, "http", jp_base_url, parts, params)
        return tornado.httpclient.AsyncHTTPClient().fetch(url, headers=headers, request_timeout=timeout, **kwargs)
    return fetch


@pytest.fixture
def jp_ws_fetch(runner, jp_auth_header, jp_base_url):
    def fetch(*parts, headers=None, params=None, **kwargs):
        headers = dict(headers or {})
        for key, value in jp_auth_header.items():
            headers.setdefault(key, value)
        url = _url(runner, "ws", jp_base_url, parts, params)
        request = tornado.httpclient.HTTPRequest(url, headers=headers, connect_timeout=120)
        return tornado.websocket.websocket_connect(request)
    return fetch
'''


def run(cmd: list[str], **kw) -> None:
    subprocess.run(cmd, check=True, **kw)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "krunner-kg-conformance"))
    parser.add_argument("--list-main-kernel", action="store_true",
                        help="keep the runner's default of listing its main kernel in GET /api/kernels")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    python = work / "venv" / "bin" / "python"
    if not python.exists():  # our own dependencies come from the system site; KG and its test plugins go here
        venv.EnvBuilder(system_site_packages=True, with_pip=True).create(work / "venv")
    run([str(python), "-m", "pip", "install", "-q", f"jupyter-kernel-gateway=={KG_VERSION}",
         "pytest-jupyter[server]>=0.7", "pytest-timeout"])
    sdist = work / f"jupyter_kernel_gateway-{KG_VERSION}.tar.gz"
    if not sdist.exists():
        run([str(python), "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             f"jupyter-kernel-gateway=={KG_VERSION}", "-d", str(work)])
    src = work / f"jupyter_kernel_gateway-{KG_VERSION}"
    with tarfile.open(sdist) as tar:
        tar.extractall(work, members=[m for m in tar.getmembers() if "/tests/" in m.name], filter="data")
    (src / "tests" / "conftest.py").write_text(ADAPTER)
    env = {**os.environ, "KRUNNER_REPO": str(REPO), "KRUNNER_LIST_MAIN_KERNEL": str(args.list_main_kernel)}
    cmd = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-o", "filterwarnings=",
           "--timeout=120", "-rfEs", "tests/test_jupyter_websocket.py",
           *[f"--deselect={t}" for t in IN_PROCESS_ONLY], *args.pytest_args]
    print("running:", " ".join(cmd), f"(list_main_kernel={args.list_main_kernel})", flush=True)
    return subprocess.run(cmd, cwd=src, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
