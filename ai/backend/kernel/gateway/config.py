"""GatewayConfig: every knob of the Kernel-Gateway-compatible server as a trait.

A plain `Configurable`, so the runner application lists it in its `classes` (its `--gateway-*`
flags are aliases of these traits) and the standalone command exposes it unchanged.
"""
from __future__ import annotations

import ast

from traitlets import Bool, Float, Integer, List, Unicode, validate
from traitlets.config import Configurable

from ..options import from_env
from ..origin import ALLOW_ORIGINS_ENV

TOKEN_ENV = "KRUNNER_GATEWAY_TOKEN"
# The gateway's flags, the same in the runner and in the standalone command.
GATEWAY_ALIASES = {
    "gateway-port": "GatewayConfig.port",
    "gateway-ip": "GatewayConfig.ip",
    "gateway-token": "GatewayConfig.token",
}


class GatewayConfig(Configurable):
    """Settings of the gateway (names follow Kernel Gateway's where one exists)."""

    port = from_env(Integer(0, help="TCP port to listen on; 0 = off inside the runner, any free port for the "
                            "standalone gateway").tag(config=True), "KRUNNER_GATEWAY_PORT")
    ip = from_env(Unicode("127.0.0.1", help="address to listen on").tag(config=True), "KRUNNER_GATEWAY_IP")
    token = from_env(
        Unicode("", help="token clients must send as `Authorization: token T` or `?token=T`; empty = no auth").tag(config=True),
        TOKEN_ENV)
    base_url = Unicode("/", help="URL prefix of every endpoint").tag(config=True)

    # CORS and origin checks (Kernel Gateway's KG_ALLOW_* equivalents)
    allow_origin = Unicode(
        "", help="Access-Control-Allow-Origin value; also the origin accepted by the origin check ('*' = any)"
    ).tag(config=True)
    allow_origin_pat = Unicode(
        "", help="regular expression of additionally accepted origins (must match the whole origin)"
    ).tag(config=True)
    allow_origins = from_env(List(
        Unicode(),
        help="origins accepted by the origin check besides the gateway's own host: exact origins or "
        "patterns where * stands for any characters but '/' (e.g. the agent's app-proxy origin); "
        "also accepts 'A,B'; see docs/security.md",
    ).tag(config=True), ALLOW_ORIGINS_ENV)
    allow_credentials = Unicode("", help="Access-Control-Allow-Credentials value").tag(config=True)
    allow_headers = Unicode("", help="Access-Control-Allow-Headers value").tag(config=True)
    allow_methods = Unicode("", help="Access-Control-Allow-Methods value").tag(config=True)
    expose_headers = Unicode("", help="Access-Control-Expose-Headers value").tag(config=True)
    max_age = Unicode("", help="Access-Control-Max-Age value").tag(config=True)

    # kernels
    env_allowlist = from_env(List(
        Unicode(),
        help="names of client-sent `env` variables passed to new kernels besides KERNEL_* ('*' = all); "
        "also accepts 'A,B'",
    ).tag(config=True), "KRUNNER_GATEWAY_ENV_ALLOWLIST")
    list_kernels = Bool(True, help="allow GET /api/kernels and /api/sessions (JupyterLab polls them)").tag(config=True)
    list_main_kernel = Bool(
        True, help="include the runner's main kernel in GET /api/kernels (False: only kernels clients started, "
        "as a plain Kernel Gateway lists; the main kernel stays reachable by id, see docs/conformance.md)"
    ).tag(config=True)
    max_kernels = Integer(0, help="upper bound of kernels (running + starting); 0 = unlimited").tag(config=True)
    default_kernel_name = Unicode("", help="kernelspec used when a POST names none (default: the main kernel's, else python3)").tag(config=True)
    protect_main_kernel = Bool(
        True, help="a DELETE of the runner's main kernel only releases it (204, the kernel keeps running for the "
                   "agent); interrupt/restart stay allowed"
    ).tag(config=True)
    honor_kernel_working_dir = Bool(
        True, help="start kernels in KERNEL_WORKING_DIR when a client sends it and it is an existing directory"
    ).tag(config=True)
    kernel_info_timeout = Float(60.0, help="seconds a new websocket waits for the kernel to answer before giving up").tag(config=True)

    # culling (off by default; never touches the runner's main kernel)
    cull_idle_timeout = Float(0.0, help="shut down kernels idle for this many seconds (0 = never)").tag(config=True)
    cull_interval = Float(60.0, help="seconds between culling passes").tag(config=True)
    cull_connected = Bool(False, help="also cull idle kernels that have open websockets").tag(config=True)
    cull_busy = Bool(False, help="also cull kernels whose last activity is old although they report busy").tag(config=True)

    # websocket and request limits
    ws_ping_interval = Float(30.0, help="seconds between websocket pings (0 = off)").tag(config=True)
    max_body_size = Integer(1 << 20, help="largest REST request body in bytes (413 beyond)").tag(config=True)
    ws_max_message_size = Integer(64 << 20, help="largest websocket message in bytes (closed with 1009 beyond)").tag(config=True)
    replay_buffer_messages = Integer(10000, help="messages kept for a disconnected session_id (oldest dropped)").tag(config=True)
    replay_buffer_timeout = Float(300.0, help="seconds a disconnected session_id's buffer and sockets are kept").tag(config=True)

    @validate("allow_origins")
    def _split_allow_origins(self, proposal) -> list[str]:
        return [o.strip() for item in proposal["value"] for o in item.split(",") if o.strip()]

    @validate("env_allowlist")
    def _split_env_allowlist(self, proposal) -> list[str]:
        """Accept `A,B` and a list literal given to a parent app that does not know this trait."""
        names: list[str] = []
        for item in proposal["value"]:
            text = item.strip()
            if text.startswith("["):
                try:
                    names += [str(x).strip() for x in ast.literal_eval(text)]
                    continue
                except (ValueError, SyntaxError):
                    pass
            names += [n.strip() for n in text.split(",") if n.strip()]
        return names
