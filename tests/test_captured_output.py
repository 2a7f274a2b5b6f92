"""Output a cell's child processes write to the kernel's file descriptors belongs to that cell
(docs/query-mode.md#output-of-child-processes; `python/captured_output.py`). A real runner and
its real ipykernel, started without pytest's marker variable: ipykernel turns its fd capture off
when it sees `PYTEST_CURRENT_TEST`, and this is about the capture."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.faultlib import WireAgent
from tests.runnerlib import RunnerProcess

CHILD_WRITES = [
    ("import os\n_ = os.system('echo from-the-shell')\n", "from-the-shell\n"),
    ("import subprocess\nsubprocess.run(['echo', 'from-run'], check=True)\nx = 1\n", "from-run\n"),
    ("import subprocess\nsubprocess.run('echo to-stderr >&2', shell=True)\n", None),  # stderr: the frame kind below
]


# The capture thread made slow to pass data on (50 ms per piece), as when it waits for the GIL
# under load: the cell then ends long before that thread has written what the child printed.
SLOW_CAPTURE = """
import sys, threading, time
def _slowed(stream):
    watcher, write = stream.watch_fd_thread, stream.write
    def slow_write(text):
        if threading.current_thread() is watcher:
            time.sleep(0.05)
        return write(text)
    stream.write = slow_write
_slowed(sys.stdout)
_slowed(sys.stderr)
"""


@pytest.fixture
async def capturing_runner(runner_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    runner = RunnerProcess(lang="python", dirs=runner_dirs, debug=False)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


async def _frames(wire: WireAgent, code: str) -> tuple[int, str, str]:
    import json

    await wire.send_code(code)
    out, err = [], []
    while True:
        op, payload = await wire.recv(timeout=60)
        if op == b"finished":
            return json.loads(payload)["exitCode"], "".join(out), "".join(err)
        (out if op == b"stdout" else err if op == b"stderr" else []).append(payload.decode())


async def test_what_children_write_arrives_with_their_query(capturing_runner: RunnerProcess) -> None:
    # Each query ends right after its child wrote, and the capture thread is slow: without the wait
    # every one of them lost its child's output (published after the query's idle status).
    wire = WireAgent(capturing_runner)
    try:
        assert (await _frames(wire, "import sys\nprint(type(sys.stdout).__name__, sys.stdout._fid is not None)"))[1] \
            == "PiecewiseOutStream True\n"  # the capture is on
        assert (await _frames(wire, SLOW_CAPTURE))[0] == 0
        for round_ in range(3):
            for code, expected in CHILD_WRITES:
                exit_code, out, err = await _frames(wire, code)
                assert exit_code == 0, (code, out, err)
                if expected is None:
                    assert err == "to-stderr\n", (round_, code, out, err)
                else:
                    assert out == expected, (round_, code, out, err)
    finally:
        wire.close()


async def test_a_child_that_never_stops_writing_delays_a_query_only_briefly(capturing_runner: RunnerProcess) -> None:
    wire = WireAgent(capturing_runner)
    try:
        import time

        await _frames(wire, "import subprocess\np = subprocess.Popen(['sh', '-c', 'while :; do echo y; done'])\n")
        started = time.monotonic()
        exit_code, _, _ = await _frames(wire, "x = 2")
        assert exit_code == 0 and time.monotonic() - started < 2.0  # the wait is bounded (0.25 s)
        assert (await _frames(wire, "p.kill(); p.wait()\n"))[0] == 0
    finally:
        wire.close()
