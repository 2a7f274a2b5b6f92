"""Built-in services of the python runner (docs/services.md#built-in-apps), used when no service-def has the name.

`jupyter`/`jupyterlab` run a Jupyter server in the work dir; when the runner's gateway is on, the
server manages its kernels through our gateway (`GatewayClient`), so notebooks opened there run on
the same kernels the agent talks to.
"""
from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PYTHON_LANGS = ("python",)


@dataclass
class LegacyStart:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


def _listen_address(bind_ip: str) -> str:
    return "0.0.0.0" if bind_ip in ("", "*") else bind_ip


def _jupyter_config(port: int, root_dir: Path, gateway_url: str | None, gateway_token: str | None,
                    bind_ip: str) -> str:
    lines = []
    # Jupyter Server (notebook >= 7, jupyterlab >= 3) and the classic notebook (< 7) read different classes.
    for app in ("ServerApp", "NotebookApp"):
        lines += [
            f"c.{app}.allow_root = True",
            f"c.{app}.ip = {_listen_address(bind_ip)!r}",
            f"c.{app}.port = {port}",
            f"c.{app}.open_browser = False",
            f"c.{app}.token = ''",
            f"c.{app}.root_dir = {str(root_dir)!r}" if app == "ServerApp" else f"c.{app}.notebook_dir = {str(root_dir)!r}",
            f"c.{app}.tornado_settings = {{'ws_ping_interval': 10000}}",
        ]
    lines += [
        "c.IdentityProvider.token = ''",
        "c.IdentityProvider.cookie_options = {'expires_days': None}",
        "c.FileContentsManager.delete_to_trash = False",
    ]
    if gateway_url:
        lines.append(f"c.GatewayClient.url = {gateway_url!r}")
        if gateway_token:
            lines.append(f"c.GatewayClient.auth_token = {gateway_token!r}")
    return "\n".join(lines) + "\n"


def python_service(
    name: str,
    port: int,
    runtime_path: str,
    work_dir: Path,
    gateway_url: str | None = None,
    gateway_token: str | None = None,
    config_dir: str | None = None,
    bind_ip: str = "127.0.0.1",
) -> LegacyStart | None:
    """argv (and env/cwd) of a python built-in service, or None when `name` is not one; it listens
    on `bind_ip` (the intrinsic services' address: loopback outside an agent's container)."""
    if name in ("jupyter", "jupyterlab"):
        fd, path = tempfile.mkstemp(prefix=f"krunner-{name}-", suffix=".py", dir=config_dir)
        with os.fdopen(fd, "w") as f:
            f.write(_jupyter_config(port, work_dir, gateway_url, gateway_token, bind_ip))
        module = "notebook" if name == "jupyter" else "jupyterlab"
        argv = [runtime_path, "-m", module, "--no-browser", "--config", path]
        session_id = os.environ.get("BACKENDAI_SESSION_ID")
        if session_id:
            argv.append(f"--IdentityProvider.cookie_name=bai-jupyter-{session_id}")
        return LegacyStart(argv)
    if name == "ipython":
        return LegacyStart([runtime_path, "-m", "IPython"])
    if name == "digits":
        return LegacyStart([runtime_path, "-m", "digits"])
    if name == "tensorboard":
        logdir = work_dir / "logs"
        logdir.mkdir(parents=True, exist_ok=True)
        # `--debugger_port` of the original is gone from current TensorBoard releases.
        return LegacyStart([
            runtime_path, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", _listen_address(bind_ip),
            "--port", str(port),
        ])
    if name == "spectravis":
        return LegacyStart([runtime_path, "-m", "http.server", "--bind", _listen_address(bind_ip), "8000"],
                           cwd=work_dir / "spectravis")
    if name == "sftp":
        return LegacyStart([runtime_path, "-m", "sftpserver", "--port", str(port)])
    return None
