"""The timing of a batch pump's coalescing pauses (ai/backend/kernel/batch_pacing.py,
docs/performance.md#batch-path): pauses aimed at most of the pipe (FILL) at the writer's measured
rate, slept on a timerfd, which is closed with the pump."""
from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ai.backend.kernel.batch_io import BatchChild
from ai.backend.kernel.batch_pacing import COALESCE, FILL, FineTimer, Pacing
from tests.batch_fake import FakeAgent

MIB = 1 << 20


def test_the_first_pause_of_a_burst_is_the_longest() -> None:
    assert Pacing(MIB).pause_for(0) == COALESCE == 0.001


def test_a_fast_writer_gets_a_pause_that_ends_before_the_pipe_is_full() -> None:
    pacing = Pacing(MIB)
    pacing.observe(0, 1_000_000, 0.001, 0.001)  # 1 GB/s, `tr` on an idle core: 1 MiB in about 1 ms
    pause = pacing.pause_for(0)
    assert pause < COALESCE
    assert FILL * MIB - 1 <= pause * 1e9 <= FILL * MIB + 1 and FILL < 0.9  # most, not all of it
    assert pacing.pause_for(600_000) < pause  # what is already there counts


def test_a_pipe_found_full_shortens_the_next_pause() -> None:
    pacing = Pacing(MIB)
    pacing.observe(0, 500_000, 0.001, 0.001)
    before = pacing.pause_for(0)
    pacing.observe(0, MIB, 0.001, 0.001)  # the writer filled it and waited: faster than it looks
    assert pacing.pause_for(0) < before
    assert pacing.pause_for(0) * MIB / 0.001 < FILL * MIB


def test_a_slow_writer_is_paused_at_most_coalesce() -> None:
    pacing = Pacing(MIB)
    pacing.observe(0, 50_000, 0.001, 0.001)  # 50 MB/s: filling the pipe would take 18 ms
    assert pacing.pause_for(0) == COALESCE
    pacing.observe(100, 100, 0.001, 0.001)  # nothing written meanwhile: the estimate stays
    assert pacing.pause_for(0) == COALESCE


def test_a_loop_too_busy_to_wake_on_time_gets_the_long_pauses() -> None:
    pacing = Pacing(MIB)
    pacing.observe(0, 1_000_000, 0.001, 0.001)
    assert pacing.pause_for(0) < COALESCE
    pacing.observe(0, MIB, 0.0022, pacing.pause_for(0))  # woke 1.3 ms late (seen at a load of 4)
    assert pacing.pause_for(0) == COALESCE
    pacing.observe(0, 900_000, 0.001, 0.001)  # on time again
    assert pacing.pause_for(0) < COALESCE


async def test_the_fine_timer_sleeps_below_asyncios_millisecond() -> None:
    timer = FineTimer.create()
    assert timer is not None  # Linux: timerfd is there
    loop = asyncio.get_running_loop()
    try:
        slept = []
        for _ in range(20):
            waiter = loop.create_future()
            start = time.perf_counter()
            assert timer.start(0.0002, waiter)
            await waiter
            slept.append(time.perf_counter() - start)
    finally:
        timer.close()
    assert min(slept) >= 0.0002  # never early
    # asyncio's own timers give 1 ms or more every time; a loaded machine delays many wake-ups, so
    # only some of them need to show the timer's resolution
    assert min(slept) < 0.001, slept


async def test_a_timer_that_cannot_be_set_falls_back_to_asyncio(tmp_path: Path) -> None:
    # a waiter that nothing resolves would stall the program's output for good
    timer = FineTimer.create()
    assert timer is not None
    timer.close()  # its timerfd is gone: setting it fails
    child = BatchChild(["true"], env={}, cwd=tmp_path, send=_discard, next_input=None)
    async with asyncio.timeout(5):
        await child._pause(0.001, timer)


async def _discard(name: str, data: object) -> None:
    pass


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeAgent]:
    work = tmp_path / "work"
    work.mkdir()
    runner = await FakeAgent(work, "shell").start()
    try:
        yield runner
    finally:
        await runner.close()


async def test_pumps_leave_no_timer_or_pipe_open(fake: FakeAgent) -> None:
    await fake.batch_run("", "", "head -c 3000000 /dev/zero | tr '\\0' x")  # warm-up
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        await fake.batch_run("", "", "head -c 3000000 /dev/zero | tr '\\0' x; head -c 3000000 /dev/zero >&2")
        assert fake.controls()[-1] == ("finished", {"exitCode": 0})
    assert len(os.listdir("/proc/self/fd")) == fds
    assert fake.text().count("x") == 6 * 3_000_000
