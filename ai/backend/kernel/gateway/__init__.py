"""A Kernel-Gateway-compatible server (REST + websockets) over the runner's KernelHub.

`await start_gateway(hub, ip=..., port=..., token=..., config=GatewayConfig(...))` serves it in the
caller's event loop; `python -m ai.backend.kernel.gateway` runs it on its own.

The server (tornado, jupyter_client) is imported on first use of one of its names: the runner reads
`gateway.config` to parse its options before it binds the agent sockets, and must not pay for
tornado there (docs/performance.md#cold-paths-runner-start-up-and-first-query).
"""
from __future__ import annotations

import importlib
from typing import Any

from .config import GatewayConfig

__all__ = ["GatewayConfig", "GatewayServer", "make_app", "start_gateway"]


def __getattr__(name: str) -> Any:
    if name in ("GatewayServer", "make_app", "start_gateway"):
        return getattr(importlib.import_module(".app", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
