"""The tornado application and `start_gateway`, which serves it on the caller's event loop."""
from __future__ import annotations

import logging
import socket

from tornado import web
from traitlets.config import Config, Configurable
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from .config import GatewayConfig
from .handlers.api import ApiHandler, StatusHandler
from .handlers.base import NotFoundHandler
from .handlers.channels import ChannelsHandler
from .handlers.kernels import KernelActionHandler, KernelHandler, MainKernelHandler
from .handlers.kernelspecs import KernelSpecHandler, KernelSpecResourceHandler, KernelSpecsHandler
from .handlers.sessions import SessionHandler, SessionRootHandler
from .handlers.spec import SpecHandler
from .state import BaseEnv, GatewayState

log = logging.getLogger(__name__)

_ID = r"(?P<kernel_id>[^/]+)"


def make_app(state: GatewayState) -> web.Application:
    """Routes of the Kernel Gateway `jupyter-websocket` API under `config.base_url`."""
    config = state.config
    base = "/" + config.base_url.strip("/") + "/" if config.base_url.strip("/") else "/"
    config.base_url = base
    routes = [
        (r"api/?", ApiHandler),
        (r"api/status", StatusHandler),
        (r"api/swagger\.(?P<fmt>json|yaml)", SpecHandler),
        (r"api/kernelspecs/?", KernelSpecsHandler),
        (r"api/kernelspecs/(?P<name>[^/]+)/?", KernelSpecHandler),
        (r"kernelspecs/(?P<name>[^/]+)/(?P<path>.+)", KernelSpecResourceHandler),
        (r"api/kernels/?", MainKernelHandler),
        (rf"api/kernels/{_ID}/?", KernelHandler),
        (rf"api/kernels/{_ID}/(?P<action>interrupt|restart)/?", KernelActionHandler),
        (rf"api/kernels/{_ID}/channels/?", ChannelsHandler),
        (r"api/sessions/?", SessionRootHandler),
        (r"api/sessions/(?P<session_id>[^/]+)/?", SessionHandler),
    ]
    return web.Application(
        [(base + pattern, handler) for pattern, handler in routes],
        default_handler_class=NotFoundHandler,
        gateway=state,
        websocket_ping_interval=config.ws_ping_interval or None,
        websocket_max_message_size=config.ws_max_message_size,
        compress_response=False,
    )


class GatewayServer:
    """A running gateway: `.port` is the bound port, `.url` its base URL, `close()` stops it."""

    def __init__(self, state: GatewayState, http: HTTPServer, sockets: list[socket.socket], ip: str) -> None:
        self.state = state
        self._http = http
        self.ip = ip
        self.port: int = sockets[0].getsockname()[1]
        host = f"[{ip}]" if ":" in ip else ip
        self.url = f"http://{'127.0.0.1' if ip in ('', '0.0.0.0') else host}:{self.port}{state.config.base_url}"

    async def close(self) -> None:
        """Stop listening, close websockets and ZMQ sockets; kernels are left to the hub's owner."""
        self._http.stop()
        await self.state.close()
        try:
            await self._http.close_all_connections()
        except Exception:  # pragma: no cover - shutdown goes on; the connections die with the process
            log.warning("closing gateway connections failed", exc_info=True)
        log.info("gateway on port %d closed", self.port)


def _gateway_config(config: object) -> GatewayConfig:
    """A GatewayConfig from one, from a parent Configurable, or from a traitlets Config/dict."""
    if isinstance(config, GatewayConfig):
        return config
    if isinstance(config, Configurable):
        return GatewayConfig(parent=config)
    if config is None:
        return GatewayConfig()
    return GatewayConfig(config=config if isinstance(config, Config) else Config(config))


async def start_gateway(
    hub,
    *,
    ip: str | None = None,
    port: int | None = None,
    token: str | None = None,
    config: GatewayConfig | Configurable | Config | None = None,
    base_env: BaseEnv = None,
) -> GatewayServer:
    """Serve the gateway for `hub` on the running event loop.

    `config` may be a GatewayConfig, a parent Configurable (e.g. the runner app) or a traitlets
    Config holding `GatewayConfig.*` settings. `ip`/`port`/`token` override the config's (port 0 = a free port, see `.port`). Extra keyword:
    `base_env` — the environment new kernels start from (a mapping or a callable returning one;
    default `os.environ`); client `env` (KERNEL_* and `config.env_allowlist`) is laid over it.
    """
    config = _gateway_config(config)
    if ip is not None:
        config.ip = ip
    if port is not None:
        config.port = port
    if token is not None:
        config.token = token
    state = GatewayState(hub, config, base_env)
    app = make_app(state)
    # The REST body limit is enforced per handler (413 JSON); this bound only stops runaway chunked bodies.
    http = HTTPServer(app, max_body_size=max(config.max_body_size * 4, config.ws_max_message_size, 1 << 26))
    try:
        sockets = bind_sockets(config.port, address=config.ip or None, reuse_port=False)
    except OSError as exc:  # the caller decides (the runner exits); the message names the address
        raise OSError(exc.errno, f"the gateway cannot listen on {config.ip or '*'}:{config.port}: {exc.strerror}") from exc
    http.add_sockets(sockets)
    server = GatewayServer(state, http, sockets, config.ip)
    log.info("gateway listening on %s (token %s)", server.url, "required" if config.token else "off")
    return server
