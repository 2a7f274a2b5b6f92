"""Stand-in for ai.backend.common.asyncio: `cancel_task` and `current_loop`, same behaviour."""

import asyncio
from typing import Any

current_loop = asyncio.get_running_loop


async def cancel_task(task: "asyncio.Task[Any]") -> None:
    """Cancel the task and wait for it (as the original: return early if it was already done)."""
    if not task.cancel():
        return
    await asyncio.sleep(0)
    if task.done():
        return
    await task
