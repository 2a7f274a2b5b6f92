"""Service definitions and app services. Placeholder until the services issue lands."""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..runner import Runner

log = logging.getLogger(__name__)


class ServiceManager:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    async def start(self) -> None:
        pass

    async def op_get_apps(self, text: str) -> None:
        await self.runner.send("apps-result", {"status": "done", "data": []})

    async def op_start_service(self, text: str) -> None:
        await self.runner.send("service-result", {"status": "failed", "error": "services are not available"})

    async def op_shutdown_service(self, text: str) -> None:
        log.info("shutdown-service %s: no services", text)

    async def op_start_model_service(self, text: str) -> None:
        try:
            name = json.loads(text).get("model_name", "")
        except (ValueError, AttributeError):
            name = ""
        log.info("start-model-service %r: no services", name)
        await self.runner.send("model-service-result", {"status": "failed", "error": "services are not available"})

    async def shutdown(self) -> None:
        pass
