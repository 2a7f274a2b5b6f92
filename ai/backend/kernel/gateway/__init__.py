"""A Kernel-Gateway-compatible server (REST + websockets) over the runner's KernelHub.

`await start_gateway(hub, ip=..., port=..., token=..., config=GatewayConfig(...))` serves it in the
caller's event loop; `python -m ai.backend.kernel.gateway` runs it on its own.
"""
from .app import GatewayServer, make_app, start_gateway
from .config import GatewayConfig

__all__ = ["GatewayConfig", "GatewayServer", "make_app", "start_gateway"]
