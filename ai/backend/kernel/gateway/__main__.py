"""Standalone gateway: `python -m ai.backend.kernel.gateway [options]` (or `python -m
ai.backend.kernel gateway [options]`). Same server as inside the runner, without the agent sockets.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal

from jupyter_core.paths import jupyter_runtime_dir
from traitlets import Bool, Unicode, default
from traitlets.config import Application

from .. import __version__
from .app import start_gateway
from ..options import debug_flag
from .config import GATEWAY_ALIASES, GatewayConfig

log = logging.getLogger(__name__)


class GatewayApp(Application):
    """Serve the Kernel-Gateway-compatible API on a KernelHub of its own."""

    name = "krunner-gateway"
    version = __version__
    description = "Kernel-Gateway-compatible REST + websocket server over krunner-bridge's KernelHub."
    classes = [GatewayConfig]

    runtime_dir = Unicode(help="Jupyter runtime dir for connection files [JUPYTER_RUNTIME_DIR]").tag(config=True)
    main_kernel = Unicode("", help="kernelspec of a kernel started at boot and marked as the main kernel").tag(config=True)
    debug = Bool(False, help="log at DEBUG level").tag(config=True)

    aliases = {
        "ip": "GatewayConfig.ip",
        "port": "GatewayConfig.port",
        "token": "GatewayConfig.token",
        **GATEWAY_ALIASES,
        "base-url": "GatewayConfig.base_url",
        "allow-origin": "GatewayConfig.allow_origin",
        "env-allowlist": "GatewayConfig.env_allowlist",
        "max-kernels": "GatewayConfig.max_kernels",
        "default-kernel-name": "GatewayConfig.default_kernel_name",
        "runtime-dir": "GatewayApp.runtime_dir",
        "main-kernel": "GatewayApp.main_kernel",
    }
    flags = debug_flag("GatewayApp")

    @default("runtime_dir")
    def _default_runtime_dir(self) -> str:
        return jupyter_runtime_dir()

    async def serve(self) -> None:
        from ..kernels import KernelHub

        os.makedirs(self.runtime_dir, mode=0o700, exist_ok=True)
        hub = KernelHub(parent=self, connection_dir=self.runtime_dir)
        if self.main_kernel:
            hub.main_kernel_id = await hub.start_kernel(self.main_kernel)
            log.info("main kernel %s: connection file %s", hub.main_kernel_id, hub.connection_file(hub.main_kernel_id))
        server = await start_gateway(hub, config=GatewayConfig(parent=self))
        log.info("serving on %s (runtime dir %s)", server.url, self.runtime_dir)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await server.close()
            await hub.shutdown_all(now=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point used by `python -m ai.backend.kernel gateway ...`."""
    app = GatewayApp()
    app.initialize(argv)
    logging.basicConfig(
        level=logging.DEBUG if app.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(app.serve())


if __name__ == "__main__":
    main()
