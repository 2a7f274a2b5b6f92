"""One running query's wait for its end: the execute_reply, the idle status, or the kernel's death
(docs/query-mode.md). The bridge feeds it; it decides when the `finished` frame may go."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

IDLE_GRACE = 3.0  # seconds of a quiet iopub after the execute_reply before a lost idle is given up


@dataclass
class QueryExecution:
    """One running query: what it still waits for before its `finished` frame (docs/query-mode.md)."""

    msg_id: str
    done: asyncio.Future[None]
    exit_code: int = 0
    idle: bool = False
    replied: bool = False
    died: bool = False
    input_waiter: asyncio.Task[None] | None = None
    notes: list[str] = field(default_factory=list)
    handling: int = 0  # iopub messages of this query being handed to the agent right now
    last_output: float = 0.0  # loop time the last of them was handed over
    backlog: Callable[[], int] = lambda: 0  # kernel messages read but not handed over yet

    def output_started(self) -> None:
        self.handling += 1

    def output_ended(self) -> None:
        self.handling -= 1
        self.last_output = asyncio.get_running_loop().time()

    def arm_idle_grace(self, delay: float = IDLE_GRACE) -> None:
        """Never wait forever for an idle status that got lost: after the execute_reply, give up
        once the query's iopub has been quiet for IDLE_GRACE s. Quiet means nothing of it is being
        handed to the agent: output queued behind a slow agent keeps the query open, so the idle
        status behind that output is still seen and nothing is dropped."""
        asyncio.get_running_loop().call_later(delay, self._idle_grace_check)

    def _idle_grace_check(self) -> None:
        if self.done.done() or self.idle:
            return
        if self.handling or self.backlog():  # output on its way to a slow agent: the idle may be behind it
            self.arm_idle_grace()
            return
        quiet = asyncio.get_running_loop().time() - self.last_output
        if quiet < IDLE_GRACE:
            self.arm_idle_grace(IDLE_GRACE - quiet)
            return
        self.give_up_on_idle()

    def give_up_on_idle(self) -> None:
        if not self.done.done():
            log.warning("no idle status %.0f s after the execute_reply of %s and its last output; finishing",
                        IDLE_GRACE, self.msg_id)
            self.idle = True
            self.check_done()

    def check_done(self) -> None:
        if (self.died or (self.idle and self.replied)) and not self.done.done():
            self.done.set_result(None)
