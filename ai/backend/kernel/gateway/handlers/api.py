"""GET /api (version probe) and /api/status."""
from __future__ import annotations

from ... import __version__
from .base import APIHandler


class ApiHandler(APIHandler):
    def get(self) -> None:
        # `version` is what clients compare; jupyter_server-era clients expect a 2.x string there.
        self.write_json({"version": "2.0.0", "gateway": "krunner-bridge", "gateway_version": __version__})


class StatusHandler(APIHandler):
    def get(self) -> None:
        state = self.gateway
        self.write_json({
            "kernels": len(state.hub.kernel_ids()),
            "connections": sum(len(s) for s in state.websockets.values()),
            "main_kernel_id": state.hub.main_kernel_id,
        })
