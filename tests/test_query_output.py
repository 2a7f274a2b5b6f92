"""Query output through the bridge's fast read path (docs/performance.md#query-path): the text the agent
gets is exactly what was printed, whether a message is small (copied) or large (read in place,
`kernelwire.uncopied`); output of cells the agent did not send is skipped unread; interactive output
still arrives as it is printed. A real runner, its real ipykernel, raw agent sockets."""
from __future__ import annotations

import asyncio
import json
import time

import psutil
import pytest
from jupyter_client.asynchronous import AsyncKernelClient

from tests.faultlib import WireAgent
from tests.runnerlib import RunnerProcess

# Every kind of character a JSON encoder escapes or passes through: newline, CR, tab, other control
# characters, quote, backslash, a literal backslash-n, non-ASCII in 2, 3 and 4 UTF-8 bytes.
AWKWARD = "line\nCR\r\ttab \x00\x01\x1b[31mred\x1b[0m \x7f \"quoted\" back\\slash \\n é € 한 😀 \u2028\n"
LARGE = 200_000  # characters: a stream message far above the bridge's zero-copy size (64 KiB)


async def stdout_of_query(agent: WireAgent, code: str) -> str:
    exit_code, out = await agent.query(code, timeout=120)
    assert exit_code == 0, out
    return out


@pytest.fixture
async def agent(runner: RunnerProcess):
    wire = WireAgent(runner)
    try:
        assert (await wire.query("print('warm')", timeout=60))[0] == 0
        yield wire
    finally:
        wire.close()


@pytest.mark.parametrize("size", [0, LARGE], ids=["small message", "large message"])
async def test_printed_text_arrives_exactly(agent: WireAgent, size: int) -> None:
    code = f"import sys\nsys.stdout.write('p' * {size} + {AWKWARD!r})\n_ = sys.stdout.write({AWKWARD!r} * 3)\n"
    assert await stdout_of_query(agent, code) == "p" * size + AWKWARD * 4


@pytest.mark.parametrize("size", [0, LARGE], ids=["small message", "large message"])
async def test_text_that_is_not_utf8_is_replaced_the_same_in_any_size(agent: WireAgent, size: int) -> None:
    # A lone surrogate cannot be UTF-8: the kernel's packer falls back to surrogateescape, the
    # message is not valid UTF-8, and the decoder's fallback replaces the byte with U+FFFD; in a
    # large message that fallback needs bytes, not a view of ZeroMQ's buffer.
    code = f"import sys\n_ = sys.stdout.write('a' * {size} + '\\udcff' + 'end\\n')\n"
    assert await stdout_of_query(agent, code) == "a" * size + "\ufffd" + "end\n"
    assert await stdout_of_query(agent, "print('next')") == "next\n"  # nothing left behind


async def test_interactive_lines_arrive_as_they_are_printed(agent: WireAgent) -> None:
    # a plain print: ipykernel sends it on its 0.2 s flush, and nothing of ours may add to that
    code = ("import time\nfor i in range(4):\n"
            "    print(f'{i} {time.time()!r}')\n    time.sleep(0.6)\n")
    await agent.send_code(code)
    arrivals: list[tuple[float, float]] = []  # (printed at, received at)
    while True:
        op, payload = await agent.recv(timeout=30)
        if op == b"finished":
            assert json.loads(payload)["exitCode"] == 0
            break
        if op == b"stdout":
            received = time.time()
            for line in payload.decode().splitlines():
                arrivals.append((float(line.split()[1]), received))
    assert len(arrivals) == 4
    delays = [received - printed for printed, received in arrivals]
    assert max(delays) < 0.5, delays  # each line as it was printed, not at the end of the cell


async def test_output_of_other_clients_cells_is_skipped_unread(runner: RunnerProcess, agent: WireAgent) -> None:
    # A notebook on the shared kernel printing 100 MB: the runner reads past it without verifying
    # or decoding it (it used to cost the runner as much CPU as the notebook's own client), and
    # the agent's next query gets its own output only.
    (connection,) = runner.dirs["runtime"].glob("kernel-*.json")
    client = AsyncKernelClient()
    client.load_connection_file(str(connection))
    client.start_channels(hb=False)
    process = psutil.Process(runner.proc.pid)
    try:
        await client.wait_for_ready(timeout=30)
        before = process.cpu_times()
        msg_id = client.execute("import sys\nline = 'n' * 1023 + '\\n'\nfor _ in range(100 * 1024): sys.stdout.write(line)\n")
        received = 0
        while True:
            msg = await asyncio.wait_for(client.get_iopub_msg(), 60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                received += len(msg["content"]["text"])
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        await asyncio.sleep(0.5)  # what the runner still had to read
        after = process.cpu_times()
    finally:
        client.stop_channels()
    assert received == 100 << 20
    runner_cpu = (after.user - before.user) + (after.system - before.system)
    # verifying and decoding 100 MB takes ~0.2 s of CPU at best; receiving it, a fraction of that
    assert runner_cpu < 0.15, runner_cpu
    assert await stdout_of_query(agent, "print('mine')") == "mine\n"
