"""Batch mode (clean/build/exec). Placeholder until the batch-mode issue lands: every step is
answered with exit code 127 and a clear message, never silence."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runner import Runner

log = logging.getLogger(__name__)

_FINISH_FRAMES = {"clean": "clean-finished", "build": "build-finished", "exec": "finished"}


class BatchExecutor:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    async def start(self) -> None:
        pass

    async def run(self, op: str, command: str) -> None:
        if command:
            await self.runner.send("stderr", f"batch mode is not available in this build ({op} skipped)\n")
            await self.runner.send(_FINISH_FRAMES[op], {"exitCode": 127})
        else:
            await self.runner.send(_FINISH_FRAMES[op], {"exitCode": 0})

    async def run_script(self, argv: list[str]) -> int:
        log.warning("batch mode unavailable: not running %s", argv)
        return 127

    async def interrupt(self) -> bool:
        return False

    async def shutdown(self) -> None:
        pass
