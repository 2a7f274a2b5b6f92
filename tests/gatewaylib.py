"""Run the standalone gateway as a child process (tests, benchmarks, conformance suites).

The child gets its own Jupyter dirs through `env`; the bound port is read from its log line, so
port 0 works and nothing depends on a fixed port.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping

_SERVING = re.compile(r"serving on (http://\S+)")


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class GatewayProcess:
    """`python -m ai.backend.kernel.gateway --port 0 ...` with its log collected in `.log`."""

    def __init__(self, args: list[str] = (), env: Mapping[str, str] | None = None, token: str = "",
                 timeout: float = 30.0, cwd: str | None = None) -> None:
        argv = [sys.executable, "-m", "ai.backend.kernel.gateway", "--port", "0", *args]
        if token:
            argv += ["--token", token]
        self.token = token
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            argv, env=dict(env if env is not None else os.environ), cwd=cwd,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, bufsize=1,
        )
        self._url: str | None = None
        self._ready = threading.Event()
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()
        if not self._ready.wait(timeout) or self._url is None:
            self.stop()
            raise RuntimeError("gateway did not start:\n" + "".join(self.log[-40:]))
        self.url: str = self._url

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            match = _SERVING.search(line)
            if match and self._url is None:
                self._url = match.group(1).rstrip("/")
                self._ready.set()
        self._ready.set()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def stop(self, timeout: float = 10.0) -> int | None:
        stop_process(self.proc, timeout)
        self._pump_thread.join(5)
        if self.proc.stderr is not None and not self._pump_thread.is_alive():
            self.proc.stderr.close()
        return self.proc.returncode

    def wait_log(self, needle: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in self.log):
                return True
            time.sleep(0.05)
        return False

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def isolated_env(root: str, **extra: str) -> dict[str, str]:
    """os.environ with HOME and every Jupyter/IPython dir moved under `root`."""
    env = dict(os.environ)
    dirs = {"HOME": "home", "JUPYTER_RUNTIME_DIR": "runtime", "JUPYTER_DATA_DIR": "data",
            "JUPYTER_CONFIG_DIR": "config", "IPYTHONDIR": "ipython"}
    for name, sub in dirs.items():
        path = os.path.join(root, sub)
        os.makedirs(path, exist_ok=True)
        env[name] = path
    env.pop("KRUNNER_GATEWAY_TOKEN", None)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [os.path.dirname(os.path.dirname(os.path.abspath(__file__))), env.get("PYTHONPATH", "")] if p)
    env.update(extra)
    return env


class JupyterServerProcess:
    """`jupyter server --gateway-url=<gateway>`: the server JupyterLab runs on, as a gateway client."""

    def __init__(self, gateway_url: str, gateway_token: str, root_dir: str, env: Mapping[str, str],
                 token: str = "js-token", timeout: float = 60.0) -> None:
        import socket

        import requests

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.token = token
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = os.path.join(root_dir, "jupyter-server.log")
        argv = [sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser", "--ip=127.0.0.1",
                f"--port={port}", "--port-retries=0", f"--ServerApp.root_dir={root_dir}",
                f"--IdentityProvider.token={token}", f"--gateway-url={gateway_url}",
                f"--GatewayClient.auth_token={gateway_token}"]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, env=dict(env), stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(self.url + "/api", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with open(self.log_path) as fh:
                    raise RuntimeError("jupyter server did not start:\n" + fh.read()[-3000:])
            time.sleep(0.2)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def stop(self, timeout: float = 20.0) -> None:
        """Stop it before the gateway: it retries DELETEs against a gateway that is gone."""
        stop_process(self.proc, timeout)
        self._log.close()
