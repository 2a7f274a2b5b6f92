"""Kernel activity for the REST model: execution_state and last_activity from each kernel's iopub.

The hub only knows process lifecycles; JupyterLab's kernel list shows busy/idle, so the gateway
keeps one SUB socket per kernel and records every `status` it publishes.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timezone

import zmq
import zmq.asyncio

from . import zmqutil

log = logging.getLogger(__name__)


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class KernelActivity:
    """execution_state / last_activity / connections of one kernel."""

    def __init__(self, ctx: zmq.asyncio.Context, km, kernel_id: str) -> None:
        self.kernel_id = kernel_id
        self.execution_state: str | None = None  # None until a status was seen
        self.last_activity = utcnow()
        self.last_activity_ts = time.monotonic()
        self.connections = 0
        self._busy: set[str] = set()  # parent msg_ids between their busy and idle
        self._session = zmqutil.kernel_session(km)
        self._sock = zmqutil.connect(ctx, km, "iopub")
        self._task = asyncio.get_running_loop().create_task(self._watch(), name=f"gateway-activity-{kernel_id}")

    def touch(self) -> None:
        self.last_activity = utcnow()
        self.last_activity_ts = time.monotonic()

    async def _watch(self) -> None:
        while True:
            try:
                frames = await self._sock.recv_multipart()
            except asyncio.CancelledError:
                raise
            except zmq.ZMQError:
                return
            self.touch()
            parts = zmqutil.split(frames, self._session)
            if parts is None or b'"status"' not in parts[0]:
                continue
            try:
                if json.loads(parts[0]).get("msg_type") == "status":
                    self._on_status(json.loads(parts[3]).get("execution_state"),
                                    json.loads(parts[1]).get("msg_id", ""))
            except (ValueError, AttributeError):
                log.debug("unparsable status message from %s", self.kernel_id)

    def _on_status(self, state: str | None, parent_id: str) -> None:
        """busy while ANY request is busy: ipykernel also publishes busy/idle for control requests
        (nudges, debug_request) handled while a shell request runs, which must not read as idle."""
        if state == "busy":
            self._busy.add(parent_id)
            if len(self._busy) > 1000:  # idles lost to a crash: do not grow without bound
                self._busy = {parent_id}
        elif state == "idle":
            self._busy.discard(parent_id)
        elif state:
            self._busy.clear()
            self.execution_state = state
            return
        self.execution_state = "busy" if self._busy else "idle"

    def reset(self, state: str) -> None:
        """Restart or death: forget requests in flight."""
        self._busy.clear()
        self.execution_state = state

    async def close(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass
        self._sock.close(linger=0)
