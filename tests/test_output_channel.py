"""The output channel (docs/query-mode.md#the-output-channel): the runner's own queries' stream
output comes over a private Unix socket instead of iopub. Both ends for real — the runner's
`OutputChannel` and the kernel's `RunnerOutput` on a real socket — then a real runner and its real
ipykernel, with a raw Jupyter client attached to the same kernel."""
from __future__ import annotations

import asyncio
import json
import os
import stat
import struct
from pathlib import Path

import pytest
from jupyter_client.asynchronous import AsyncKernelClient

from ai.backend.kernel.outputchannel import HEADER, OutputChannel, Record
from ai.backend.kernel.python.runner_output import RunnerOutput, connect_from_env
from tests.faultlib import WireAgent
from tests.runnerlib import RunnerProcess

SESSION_PARENT = {"msg_id": "m-1"}
Opened = tuple[OutputChannel, list[Record]]  # the channel fixture: a started channel, what it emitted


async def _until(records: list[Record], count: int, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while len(records) < count:
            await asyncio.sleep(0.01)


@pytest.fixture
async def channel(tmp_path: Path):
    opened = OutputChannel.open(tmp_path)
    assert opened is not None
    records: list[Record] = []
    opened.start(records.append)
    try:
        yield opened, records
    finally:
        opened.close()


async def test_pieces_of_the_runners_session_arrive_whole_and_in_order(channel: Opened) -> None:
    channel, records = channel
    writer = RunnerOutput(channel.path, channel.session_id)
    parent = {**SESSION_PARENT, "session": channel.session_id}
    big = "é" * (3 << 20)  # 6 MiB of UTF-8: far more than a socket buffer holds
    assert await asyncio.to_thread(writer.take, parent, "stdout", big)
    assert writer.take(parent, "stderr", "warning\n")
    assert writer.take(parent, "stdout", "")  # an empty piece is a frame too
    await _until(records, 3)
    assert records == [
        ("m-1", b"stdout", big.encode()), ("m-1", b"stderr", b"warning\n"), ("m-1", b"stdout", b"")]


async def test_other_sessions_and_unencodable_text_stay_on_iopub(channel: Opened) -> None:
    channel, records = channel
    writer = RunnerOutput(channel.path, channel.session_id)
    assert not writer.take({**SESSION_PARENT, "session": "a-notebook"}, "stdout", "x")
    assert not writer.take({**SESSION_PARENT, "session": channel.session_id}, "stdout", "\udcff")
    assert not writer.take({**SESSION_PARENT, "session": channel.session_id}, "display", "x")
    await asyncio.sleep(0.1)
    assert records == []
    assert writer.sock is None  # nothing was worth connecting for


async def test_channel_directory_is_private_and_removed_on_close(tmp_path: Path) -> None:
    opened = OutputChannel.open(tmp_path)
    assert opened is not None
    mode = stat.S_IMODE(os.stat(opened.directory).st_mode)
    assert mode == 0o700, oct(mode)
    assert stat.S_ISSOCK(os.stat(opened.path).st_mode)
    assert opened.env == {"KRUNNER_OUTPUT_SOCKET": opened.path, "KRUNNER_OUTPUT_SESSION": opened.session_id}
    opened.close()
    opened.close()  # twice is harmless
    assert not os.path.exists(opened.directory)


async def test_a_long_runtime_dir_still_gets_a_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)  # longer than a socket path may be
    deep.mkdir(parents=True)
    opened = OutputChannel.open(deep)
    assert opened is not None
    try:
        assert len(opened.path) < 108 and not opened.path.startswith(str(deep))
    finally:
        opened.close()


async def test_garbage_and_a_cut_frame_drop_that_connection_only(channel: Opened, caplog) -> None:
    channel, records = channel
    loop = asyncio.get_running_loop()
    import socket

    bad = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bad.connect(channel.path)
    bad.sendall(b"\x09" + b"\x00" * 6)  # kind 9: not an output frame
    cut = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cut.connect(channel.path)
    cut.sendall(HEADER.pack(1, 3, 100) + b"m-1" + b"only ten b")  # promises 100 bytes, sends 10
    cut.close()
    await asyncio.sleep(0.2)
    assert records == []
    assert "not an output frame" in caplog.text
    assert "closed in the middle of a frame" in caplog.text
    # the channel still serves a well-behaved kernel
    writer = RunnerOutput(channel.path, channel.session_id)
    assert await loop.run_in_executor(None, writer.take, {**SESSION_PARENT, "session": channel.session_id},
                                      "stdout", "fine\n")
    await _until(records, 1)
    assert records == [("m-1", b"stdout", b"fine\n")]
    bad.close()


async def test_drain_takes_what_was_written_before_now(channel: Opened) -> None:
    """What the bridge relies on for order: a frame written completely is emitted by drain() at
    once, without waiting for the loop to notice the socket."""
    channel, records = channel
    writer = RunnerOutput(channel.path, channel.session_id)
    parent = {**SESSION_PARENT, "session": channel.session_id}
    writer.take(parent, "stdout", "a")  # connects; the loop accepts it
    await _until(records, 1)
    for text in ("b", "c", "d"):
        assert writer.take(parent, "stdout", text)
    channel.drain()  # no loop turn between the writes and this
    assert [r[2] for r in records] == [b"a", b"b", b"c", b"d"]


async def test_a_writer_whose_runner_is_gone_falls_back_to_iopub(tmp_path: Path, capfd, monkeypatch) -> None:
    opened = OutputChannel.open(tmp_path)
    assert opened is not None
    for name, value in opened.env.items():
        monkeypatch.setenv(name, value)
    writer = connect_from_env()
    assert writer is not None and "KRUNNER_OUTPUT_SOCKET" not in os.environ  # taken out of the environment
    opened.close()
    parent = {**SESSION_PARENT, "session": opened.session_id}
    results = [writer.take(parent, "stdout", "x" * (1 << 20)) for _ in range(3)]
    assert results[-1] is False and writer.broken  # the piece that failed, and every one after, on iopub
    assert "output goes on iopub from now on" in capfd.readouterr().err
    monkeypatch.setenv("KRUNNER_OUTPUT_SOCKET", str(tmp_path / "nothing.sock"))
    monkeypatch.setenv("KRUNNER_OUTPUT_SESSION", "s")
    assert connect_from_env() is None  # nobody listening: no channel at all


# ---- a real runner -------------------------------------------------------------------------------

@pytest.fixture
async def attached(runner: RunnerProcess):
    """The agent's wire, and a raw Jupyter client on the same kernel (its connection file)."""
    wire = WireAgent(runner)
    assert (await wire.query("print('warm')", timeout=60))[0] == 0
    (connection,) = runner.dirs["runtime"].glob("kernel-*.json")
    client = AsyncKernelClient()
    client.load_connection_file(str(connection))
    client.start_channels(hb=False)
    try:
        await client.wait_for_ready(timeout=30)
        yield wire, client
    finally:
        client.stop_channels()
        wire.close()


async def _iopub_types(client: AsyncKernelClient, seconds: float) -> list[tuple[str, str]]:
    """(msg_type, stream name or state) of everything on iopub for `seconds`."""
    seen = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            msg = await client.get_iopub_msg(timeout=left)
        except Exception:
            break
        content = msg["content"]
        seen.append((msg["msg_type"], content.get("name") or content.get("execution_state") or ""))
    return seen


async def test_agent_output_takes_the_channel_in_order_and_notebooks_keep_iopub(
        runner: RunnerProcess, attached) -> None:
    wire, client = attached
    code = ("import sys\nfrom IPython.display import HTML, display\n"
            "print('first')\nsys.stdout.write('b' * (3 << 20))\nprint(' tail')\n"
            "display(HTML('<b>rich</b>'))\nprint('after', file=sys.stderr)\nraise ValueError('boom')\n")
    await wire.send_code(code)
    frames = []
    while True:
        op, payload = await wire.recv(timeout=60)
        if op == b"finished":
            assert json.loads(payload)["exitCode"] == 1
            break
        frames.append((op, payload))
    text = [(op, payload.decode()) for op, payload in frames]
    stdout = "".join(p for op, p in text if op == b"stdout")
    assert stdout == "first\n" + "b" * (3 << 20) + " tail\n"
    kinds = [op for op, _ in text]
    # stdout, then the rich output, then stderr, then the traceback: as the kernel produced them
    first_media, last_stdout = kinds.index(b"media"), len(kinds) - 1 - kinds[::-1].index(b"stdout")
    assert last_stdout < first_media
    stderr = [p for op, p in text if op == b"stderr"]
    assert stderr[0] == "after\n" and "ValueError" in stderr[-1]
    assert kinds.index(b"stderr") > first_media
    # the notebook saw the query run, but not its stream output (that went to the runner)
    seen = await _iopub_types(client, 1.0)
    assert ("execute_input", "") in seen and ("error", "") in seen and ("display_data", "") in seen
    assert not any(kind == "stream" for kind, _ in seen), seen
    # while its own cells print on iopub as ever
    msg_id = client.execute("print('notebook')")
    got = ""
    while True:
        msg = await client.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            got += msg["content"]["text"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    assert got == "notebook\n"
    assert "output goes on iopub" not in runner.log()


async def test_a_restarted_kernel_reconnects(runner: RunnerProcess) -> None:
    wire = WireAgent(runner)
    try:
        assert (await wire.query("print('before')", timeout=60)) == (0, "before\n")
        exit_code, _ = await wire.query("import os\nos._exit(3)", timeout=60)
        assert exit_code != 0
        for _ in range(50):  # the restarted kernel answers once it is up
            exit_code, out = await wire.query("print('x' * 300000)", timeout=60)
            if exit_code == 0:
                break
            await asyncio.sleep(0.2)
        assert (exit_code, out) == (0, "x" * 300000 + "\n")
    finally:
        wire.close()
    assert runner.log().count("output channel: a kernel connected") == 2  # the first kernel, the restarted one


def test_frame_header_is_the_same_on_both_ends() -> None:
    from ai.backend.kernel.python import runner_output

    assert runner_output.HEADER.format == HEADER.format and HEADER.size == struct.calcsize("!BHI")
    assert runner_output.SOCKET_ENV == "KRUNNER_OUTPUT_SOCKET"


async def test_an_interrupted_flood_ends_cleanly_and_the_next_query_is_clean(runner: RunnerProcess) -> None:
    """A query printing as fast as it can over the channel, interrupted: `finished` with exit code
    1 and the KeyboardInterrupt, nothing of the flood after it, and the next query gets only its own
    output."""
    wire = WireAgent(runner)
    try:
        assert (await wire.query("print('warm')", timeout=60))[0] == 0
        await wire.send_code("import sys\nline = 'f' * 999 + '\\n'\nwhile True: sys.stdout.write(line)\n")
        received = 0
        while received < 50 << 20:  # 50 MB of it have come through
            op, payload = await wire.recv(timeout=30)
            assert op == b"stdout", (op, payload[:200])
            received += len(payload)
        await wire.push.send_multipart([b"interrupt", b""])
        stderr = ""
        while True:
            op, payload = await wire.recv(timeout=30)
            if op == b"finished":
                assert json.loads(payload)["exitCode"] == 1
                break
            if op == b"stderr":
                stderr += payload.decode()
            else:
                assert op == b"stdout" and set(payload) == {ord("f"), ord("\n")}, (op, payload[:100])
        assert "KeyboardInterrupt" in stderr
        assert await wire.query("print('clean')", timeout=60) == (0, "clean\n")
    finally:
        wire.close()


async def test_output_of_a_cells_threads_arrives(runner: RunnerProcess) -> None:
    """Output a thread of the cell prints (it writes under the cell's parent) takes the channel too."""
    wire = WireAgent(runner)
    try:
        code = ("import threading\nprint('a')\n"
                "t = threading.Thread(target=print, args=('from-a-thread',))\nt.start(); t.join()\nprint('z')\n")
        assert await wire.query(code, timeout=60) == (0, "a\nfrom-a-thread\nz\n")
    finally:
        wire.close()
