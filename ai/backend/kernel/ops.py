"""The table of agent ops: every op the runner accepts, how it is served and what it answers.

One entry per op, in the style of ipykernel's `shell_handlers`: the runner method that serves it,
whether it goes through the serial task queue, runs inline in the receive loop or as a task of its
own, the frame the agent waits for, and the reply that says a request could not be read. Decoding
(`protocol.decode_request`), dispatch and the bad-request path all read this table and nothing
else. See docs/protocol.md#inbound-ops, and docs/architecture.md#where-does-an-agent-op-go.
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Mode(enum.Enum):
    QUEUED = "queued"  # one at a time, in arrival order, through the serial task queue
    INLINE = "inline"  # awaited by the receive loop (quick, never blocks on the kernel)
    TASK = "task"  # a background task of its own, so the receive loop keeps reading


@dataclass(frozen=True)
class Op:
    handler: str  # name of the Runner method that serves it: `async def handler(request)`
    mode: Mode
    reply: str | None = None  # the frame the agent waits for (None: it waits for nothing)
    # payload of `reply` for a request whose payload could not be decoded (None: serve it anyway,
    # its payload is not read)
    on_bad_request: Callable[[str], Any] | None = None


def _exit_127(error: str) -> dict[str, Any]:
    return {"exitCode": 127}


def _failed(error: str) -> dict[str, Any]:
    return {"status": "failed", "error": error}


OPS: dict[str, Op] = {
    "clean": Op("run_batch_step", Mode.QUEUED, "clean-finished", _exit_127),
    "build": Op("run_batch_step", Mode.QUEUED, "build-finished", _exit_127),
    "exec": Op("run_batch_step", Mode.QUEUED, "finished", _exit_127),
    "code": Op("run_query", Mode.QUEUED, "finished", _exit_127),
    "status": Op("answer_status", Mode.INLINE, "status"),
    "input": Op("take_input", Mode.INLINE),
    "complete": Op("complete", Mode.TASK, "completion", lambda error: {"suggestions": []}),
    "interrupt": Op("interrupt", Mode.TASK),
    "event": Op("log_event", Mode.INLINE),
    "get-apps": Op("get_apps", Mode.INLINE, "apps-result", lambda error: {"status": "failed", "data": [], "error": error}),
    "start-service": Op("start_service", Mode.TASK, "service-result", _failed),
    "shutdown-service": Op("shutdown_service", Mode.TASK),
    "start-model-service": Op("start_model_service", Mode.TASK, "model-service-result", _failed),
}

KNOWN_OPS = frozenset(OPS)
QUEUED_OPS = frozenset(name for name, op in OPS.items() if op.mode is Mode.QUEUED)
# Ops whose sender waits for a reply frame: a payload that cannot be decoded still gets one.
ANSWERED_OPS = frozenset(name for name, op in OPS.items() if op.reply is not None)
# The frame that ends each queued op (batch steps and queries).
FINISH_FRAME = {name: op.reply for name, op in OPS.items() if op.mode is Mode.QUEUED}
