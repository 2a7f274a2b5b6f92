"""The spill queue between the kernel's iopub and a slow agent (ai/backend/kernel/spillqueue.py):
order, the memory bound, the spool file, and what happens when even the spool is full."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

from ai.backend.kernel.spillqueue import SpillQueue, dropped_bytes_of

KIB = 1024


def message(i: int, size: int = 60 * KIB) -> list[bytes]:
    """A multipart message like a kernel's: several parts, numbered, `size` bytes of content."""
    return [b"topic", b"<IDS|MSG>", f"sig{i}".encode(), f'{{"n": {i}}}'.encode(), i.to_bytes(8, "big") * 2 + bytes(size)]


async def drain(queue: SpillQueue) -> list[list[bytes]]:
    out = []
    while len(queue) or queue._dropped:
        out.append(await queue.get())
    return out


def spool_files(directory: Path) -> list[str]:
    """Spool files still linked in `directory` (they are unlinked temp files: there must be none)."""
    return os.listdir(directory)


async def test_order_holds_from_memory_to_spool_and_back(tmp_path: Path) -> None:
    queue = SpillQueue(memory_limit=256 * KIB, spool_dir=str(tmp_path))
    sent = [message(i) for i in range(40)]  # 2.5 MiB through a 256 KiB memory limit
    for parts in sent[:30]:
        queue.put(parts)
    assert queue.peak_memory_bytes <= 256 * KIB
    assert queue.spool_bytes > 1024 * KIB  # the rest went to the spool file
    got = [await queue.get() for _ in range(20)]
    for parts in sent[30:]:
        queue.put(parts)  # still spooling: later messages go behind the spooled ones
    got += await drain(queue)
    assert got == sent
    assert queue.spool_bytes == 0 and queue._spool is None  # caught up: the spool file is closed
    queue.put(message(99))  # and memory is used again
    assert queue.memory_bytes > 0 and queue.spool_bytes == 0
    assert spool_files(tmp_path) == []  # never visible in the directory


async def test_get_waits_for_the_next_message() -> None:
    queue = SpillQueue()
    waiter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    queue.put(message(1))
    assert await asyncio.wait_for(waiter, 1) == message(1)


async def test_beyond_the_spool_limit_output_is_dropped_and_a_mark_says_how_much(tmp_path: Path) -> None:
    queue = SpillQueue(memory_limit=128 * KIB, spool_limit=512 * KIB, spool_dir=str(tmp_path))
    sent = [message(i) for i in range(20)]  # 1.25 MiB into 128 KiB + 512 KiB
    for parts in sent:
        queue.put(parts)
    got = await drain(queue)
    marks = [dropped_bytes_of(parts) for parts in got if dropped_bytes_of(parts) is not None]
    kept = [parts for parts in got if dropped_bytes_of(parts) is None]
    assert kept == sent[:len(kept)]  # what is kept is the beginning, in order
    assert len(marks) == 1 and marks[0] == sum(sum(map(len, p)) for p in sent[len(kept):])
    assert dropped_bytes_of(got[-1]) == marks[0]  # the mark comes where the output was lost


async def test_a_mark_comes_before_the_output_that_follows_a_drop(tmp_path: Path) -> None:
    queue = SpillQueue(memory_limit=128 * KIB, spool_limit=256 * KIB, spool_dir=str(tmp_path))
    for i in range(8):
        queue.put(message(i))  # 2 in memory, 4 spooled, 2 dropped
    while len(queue):
        await queue.get()  # the agent catches up
    queue.put(message(100))
    first, second = await queue.get(), await queue.get()
    assert dropped_bytes_of(first) == 2 * sum(map(len, message(0)))
    assert second == message(100)


async def test_a_spool_that_cannot_be_written_drops_with_a_mark(tmp_path: Path) -> None:
    queue = SpillQueue(memory_limit=128 * KIB, spool_dir=str(tmp_path / "missing"))
    sent = [message(i) for i in range(4)]
    for parts in sent:
        queue.put(parts)
    got = await drain(queue)
    assert got[:2] == sent[:2]
    assert dropped_bytes_of(got[2]) == 2 * sum(map(len, message(0))) and len(got) == 3


async def test_close_forgets_everything_and_releases_the_spool(tmp_path: Path) -> None:
    queue = SpillQueue(memory_limit=64 * KIB, spool_dir=str(tmp_path))
    for i in range(10):
        queue.put(message(i))
    spool = queue._spool
    assert spool is not None
    queue.close()
    assert len(queue) == 0 and queue.memory_bytes == 0 and spool.closed
