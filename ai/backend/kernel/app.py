"""The runner's configuration: a traitlets Application, like every Jupyter server.

Each option is a trait with a help string, settable as a command-line flag (`--replin-port 2000`),
in a config file, and from an environment variable where one is named.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

from jupyter_core.paths import jupyter_runtime_dir
from traitlets import Bool, Float, Integer, List, Unicode, default
from traitlets.config import Application

from . import __version__
from .environment import in_agent_container
from .gateway.config import GatewayConfig
from .kernels import KernelHub


def _env(name: str, fallback: str) -> str:
    return os.environ.get(name, fallback)


def _env_int(name: str, fallback: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value else fallback
    except ValueError:
        logging.getLogger(__name__).warning("ignoring %s=%r: not an integer", name, value)
        return fallback


class RunnerApp(Application):
    """python -m ai.backend.kernel [--debug] [options] LANG [RUNTIME_PATH]"""

    name = "krunner-bridge"
    version = __version__
    description = (
        "Serve the Backend.AI agent protocol (ZeroMQ) and Jupyter front-ends on real Jupyter kernels.\n"
        "LANG is one of the runner's languages; RUNTIME_PATH is the interpreter or toolchain that runs\n"
        "user code (default: the language's usual path, or this interpreter for Python)."
    )

    replin_port = Integer(2000, config=True, help="agent → runner PULL port [KRUNNER_REPLIN_PORT]")
    replout_port = Integer(2001, config=True, help="runner → agent PUSH port [KRUNNER_REPLOUT_PORT]")
    bind_ip = Unicode(config=True, help="address the agent sockets bind to (`*` = all interfaces); default `*` inside an agent's container, 127.0.0.1 elsewhere [KRUNNER_BIND_IP]")
    config_dir = Unicode(config=True, help="per-kernel config dir (environ.txt, intrinsic-ports.json); default /home/config [KRUNNER_CONFIG_DIR]")
    work_dir = Unicode(config=True, help="the runner's cwd and the children's HOME; default /home/work [KRUNNER_WORK_DIR]")
    runtime_dir = Unicode(config=True, help="where kernel connection files go; default: Jupyter's runtime dir [JUPYTER_RUNTIME_DIR]")
    debug = Bool(False, config=True, help="log at DEBUG level")
    kernel_name = Unicode("", config=True, help="kernelspec for query mode (default: the language's own, by exact name)")
    kernel_start_timeout = Float(60.0, config=True, help="seconds to wait for the main kernel to answer")
    complete_timeout = Float(5.0, config=True, help="seconds to wait for completions before answering []")
    shutdown_timeout = Float(4.0, config=True, help="upper bound in seconds for the whole shutdown")
    send_timeout = Float(0.5, config=True, help="seconds a final frame may wait for the agent at shutdown")
    user_input_socket = Unicode(config=True, help="Unix socket for batch-mode user input; default /tmp/bai-user-input.sock [KRUNNER_USER_INPUT_SOCKET]")
    legacy_batch_frames = Bool(False, config=True, help="send clean-/build-finished for every batch step exactly as the original runner")
    batch_kill_grace = Float(2.0, config=True, help="seconds between SIGINT and SIGKILL when interrupting a batch program")
    batch_followup_wait = Float(0.05, config=True, help="seconds a finished batch step waits for the agent's next step to arrive")
    batch_input_poll_interval = Float(0.1, config=True, help="seconds between checks whether a batch program blocks reading stdin")
    service_defs_dir = Unicode(config=True, help="service definition directory; default /etc/backend.ai/service-defs [KRUNNER_SERVICE_DEFS_DIR]")
    service_launch_timeout = Float(30.0, config=True, help="seconds to wait for a started service's port")
    intrinsic_services = List(Unicode(), config=True, help="intrinsic services started at start-up (sshd, ttyd); empty = none [KRUNNER_INTRINSIC_SERVICES, comma-separated]")
    intrinsic_bind_ip = Unicode(config=True, help="address sshd and the web terminal listen on; default 0.0.0.0 inside an agent's container (as the original), 127.0.0.1 elsewhere [KRUNNER_INTRINSIC_BIND_IP]")
    ssh_key_dir = Unicode(config=True, help="generated SSH keys, recreated at every start; default /tmp/dropbear [KRUNNER_SSH_KEY_DIR]")
    gateway_port = Integer(0, config=True, help="port of the Kernel-Gateway-compatible server (0 = off)")
    gateway_ip = Unicode("127.0.0.1", config=True, help="address of the gateway server")
    gateway_token = Unicode(config=True, help="token the gateway requires [KRUNNER_GATEWAY_TOKEN]")
    extra_kernel_env = List(Unicode(), config=True, help="extra NAME=VALUE pairs for the main kernel")

    aliases = {
        "replin-port": "RunnerApp.replin_port",
        "replout-port": "RunnerApp.replout_port",
        "bind-ip": "RunnerApp.bind_ip",
        "config-dir": "RunnerApp.config_dir",
        "work-dir": "RunnerApp.work_dir",
        "runtime-dir": "RunnerApp.runtime_dir",
        "kernel-name": "RunnerApp.kernel_name",
        "kernel-start-timeout": "RunnerApp.kernel_start_timeout",
        "complete-timeout": "RunnerApp.complete_timeout",
        "shutdown-timeout": "RunnerApp.shutdown_timeout",
        "user-input-socket": "RunnerApp.user_input_socket",
        "batch-kill-grace": "RunnerApp.batch_kill_grace",
        "service-defs-dir": "RunnerApp.service_defs_dir",
        "service-launch-timeout": "RunnerApp.service_launch_timeout",
        "intrinsic-services": "RunnerApp.intrinsic_services",
        "intrinsic-bind-ip": "RunnerApp.intrinsic_bind_ip",
        "ssh-key-dir": "RunnerApp.ssh_key_dir",
        "gateway-port": "RunnerApp.gateway_port",
        "gateway-ip": "RunnerApp.gateway_ip",
        "gateway-token": "RunnerApp.gateway_token",
        "log-level": "Application.log_level",
    }
    flags = {
        "debug": ({"RunnerApp": {"debug": True}}, "log at DEBUG level"),
        "legacy-batch-frames": ({"RunnerApp": {"legacy_batch_frames": True}}, "original batch frame sequence"),
    }
    classes = [KernelHub, GatewayConfig]

    @default("replin_port")
    def _replin_default(self) -> int:
        return _env_int("KRUNNER_REPLIN_PORT", 2000)

    @default("replout_port")
    def _replout_default(self) -> int:
        return _env_int("KRUNNER_REPLOUT_PORT", 2001)

    @default("config_dir")
    def _config_dir_default(self) -> str:
        return _env("KRUNNER_CONFIG_DIR", "/home/config")

    @default("work_dir")
    def _work_dir_default(self) -> str:
        return _env("KRUNNER_WORK_DIR", "/home/work")

    @default("runtime_dir")
    def _runtime_dir_default(self) -> str:
        return jupyter_runtime_dir()

    @default("user_input_socket")
    def _user_input_socket_default(self) -> str:
        return _env("KRUNNER_USER_INPUT_SOCKET", "/tmp/bai-user-input.sock")

    @default("service_defs_dir")
    def _service_defs_default(self) -> str:
        return _env("KRUNNER_SERVICE_DEFS_DIR", "/etc/backend.ai/service-defs")

    @default("intrinsic_services")
    def _intrinsic_services_default(self) -> list[str]:
        value = os.environ.get("KRUNNER_INTRINSIC_SERVICES")
        if value is None:
            return ["sshd", "ttyd"]
        return [name.strip() for name in value.split(",") if name.strip()]

    @default("bind_ip")
    def _bind_ip_default(self) -> str:
        return _env("KRUNNER_BIND_IP", "*" if self.in_agent_container else "127.0.0.1")

    @default("intrinsic_bind_ip")
    def _intrinsic_bind_ip_default(self) -> str:
        return _env("KRUNNER_INTRINSIC_BIND_IP", "0.0.0.0" if self.in_agent_container else "127.0.0.1")

    @property
    def in_agent_container(self) -> bool:
        return in_agent_container(Path(self.config_dir))

    @default("ssh_key_dir")
    def _ssh_key_dir_default(self) -> str:
        return _env("KRUNNER_SSH_KEY_DIR", "/tmp/dropbear")

    @default("gateway_token")
    def _gateway_token_default(self) -> str:
        return _env("KRUNNER_GATEWAY_TOKEN", "")

    def explicitly_set(self, trait: str) -> bool:
        """Was this option given on the command line or in a config file (not a default/env)?"""
        return trait in self.config.get("RunnerApp", {})

    @property
    def lang(self) -> str:
        return self.extra_args[0] if self.extra_args else ""

    @property
    def runtime_path_arg(self) -> str | None:
        return self.extra_args[1] if len(self.extra_args) > 1 else None

    def start(self) -> None:
        from .runner import Runner, configure_logging

        configure_logging(self)
        runner = Runner(self)
        asyncio.run(runner.serve())


class RunnerLogFormatter(logging.Formatter):
    """`<prefix>: +<seconds since start> [LEVEL] message`, as the original runner logs."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.started = time.time()

    def format(self, record: logging.LogRecord) -> str:
        elapsed = record.created - self.started
        line = f"{self.prefix}: +{elapsed:,.3f} [{record.levelname}] {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line
