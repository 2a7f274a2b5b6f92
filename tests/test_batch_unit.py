"""BatchExecutor against a frame-collecting stand-in runner (real subprocesses, real sockets)."""
from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ai.backend.kernel import batch_io, batch_pacing
from ai.backend.kernel.batch_io import READ_SIZE
from ai.backend.kernel.procfacts import group_alive, process_tree
from ai.backend.kernel.languages.python import MARKER, install_sitecustomize
from tests.batch_fake import FakeAgent

PY = sys.executable


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
async def fake(work: Path) -> AsyncIterator[FakeAgent]:
    runner = await FakeAgent(work, "python", runtime=PY).start()
    try:
        yield runner
    finally:
        await runner.close()


async def legacy_runner(work: Path) -> FakeAgent:
    return await FakeAgent(work, "python", runtime=PY, legacy=True).start()


# --- finish frames ----------------------------------------------------------------------------

async def test_batch_is_one_run_ending_with_finished(fake: FakeAgent, work: Path) -> None:
    (work / "main.py").write_text("print('hello from main')\n")
    await fake.batch_run("*", "*", "*")
    assert fake.controls() == [("finished", {"exitCode": 0})]
    assert fake.text() == "hello from main\n"


async def test_legacy_frames_are_the_original_sequence(work: Path) -> None:
    fake = await legacy_runner(work)
    try:
        (work / "main.py").write_text("print('x')\n")
        await fake.batch_run("", "*", "*")
        assert fake.controls() == [("clean-finished", {"exitCode": 0}), ("build-finished", {"exitCode": 0}),
                                   ("finished", {"exitCode": 0})]
        fake.frames.clear()
        await fake.batch_run("", "echo bad >&2; exit 3", "touch ran")
        assert fake.controls() == [("clean-finished", {"exitCode": 0}), ("build-finished", {"exitCode": 3}),
                                   ("finished", {"exitCode": 127})]
        assert not (work / "ran").exists()
    finally:
        await fake.close()


async def test_failed_build_ends_batch_with_127_and_skips_exec(fake: FakeAgent, work: Path) -> None:
    await fake.batch_run("", "echo 'x.c:1: error' >&2; exit 3", "touch ran")
    assert fake.controls() == [("finished", {"exitCode": 127})]
    stderr = fake.text("stderr")
    assert stderr.startswith("x.c:1: error\n") and "exit code 3" in stderr
    assert not (work / "ran").exists()
    fake.frames.clear()  # the next batch is not affected
    await fake.batch_run("", "", "echo next")
    assert fake.controls() == [("finished", {"exitCode": 0})] and fake.text() == "next\n"


async def test_failed_clean_goes_on_with_the_build(fake: FakeAgent) -> None:
    await fake.batch_run("exit 2", "echo built", "echo ran")
    assert fake.controls() == [("finished", {"exitCode": 0})]
    assert fake.text() == "built\nran\n" and "code 2" in fake.text("stderr")


async def test_single_steps_send_their_own_frames(fake: FakeAgent) -> None:
    await fake.batch.run("clean", "")
    await fake.batch.run("build", "exit 4")  # nothing queued behind: the original frame
    assert fake.controls() == [("clean-finished", {"exitCode": 0}), ("build-finished", {"exitCode": 4})]
    fake.frames.clear()
    await fake.batch.run("exec", "echo never")  # the last build failed (docs/protocol.md#batch-frame-sequences)
    assert fake.frames == [("finished", b'{"exitCode": 127}')]
    fake.frames.clear()
    await fake.batch.run("exec", "echo now")  # the flag is cleared
    assert fake.text() == "now\n"


async def test_empty_batch_is_finished_zero(fake: FakeAgent) -> None:
    await fake.batch_run("", "", "")
    assert fake.frames == [("finished", b'{"exitCode": 0}')]


# --- heuristics, missing things ---------------------------------------------------------------

async def test_missing_entry_file_says_so_and_exits_127(fake: FakeAgent) -> None:
    await fake.batch_run("", "*", "*")
    assert fake.controls() == [("finished", {"exitCode": 127})]
    assert "main.py" in fake.text("stderr")


async def test_missing_toolchain_is_127_with_a_clear_message(work: Path) -> None:
    (work / "main.jl").write_text('println("hi")\n')
    fake = await FakeAgent(work, "julia", runtime="/nonexistent/julia", env={"PATH": "/usr/bin:/bin"}).start()
    try:
        await fake.batch_run("", "*", "*")
        assert fake.controls() == [("finished", {"exitCode": 127})]
        stderr = fake.text("stderr")
        assert "julia" in stderr and "not found" in stderr and "Traceback" not in stderr
    finally:
        await fake.close()


async def test_explicit_command_not_found_is_127(fake: FakeAgent) -> None:
    await fake.batch_run("", "", "no-such-command-xyz")
    assert fake.controls() == [("finished", {"exitCode": 127})]
    assert "not found" in fake.text("stderr")


async def test_build_star_runs_make_when_there_is_a_makefile(fake: FakeAgent, work: Path) -> None:
    (work / "Makefile").write_text("all:\n\t@echo made-it > made.txt\n")
    (work / "main.py").write_text("print(open('made.txt').read().strip())\n")
    await fake.batch_run("", "*", "*")
    assert fake.controls() == [("finished", {"exitCode": 0})]
    assert fake.text() == "made-it\n"


async def test_batch_mode_flag_only_for_exec(fake: FakeAgent) -> None:
    await fake.batch_run("echo clean=$_BACKEND_BATCH_MODE", "echo build=$_BACKEND_BATCH_MODE",
                         "echo exec=$_BACKEND_BATCH_MODE; echo home=$HOME")
    assert fake.text() == f"clean=\nbuild=\nexec=1\nhome={fake.work_dir}\n"


# --- output -----------------------------------------------------------------------------------

async def test_large_output_arrives_whole_in_frames_of_at_most_1mib(fake: FakeAgent) -> None:
    size = 6 * 1024 * 1024 + 123
    await fake.batch_run("", "", f"head -c {size} /dev/zero | tr '\\0' x; echo err >&2")
    out = [p for t, p in fake.frames if t == "stdout"]
    assert sum(map(len, out)) == size and set(b"".join(out)) == {ord("x")}
    assert max(map(len, out)) <= READ_SIZE == 1024 * 1024
    assert fake.text("stderr") == "err\n"


async def test_multibyte_output_arrives_byte_exact_across_frames(fake: FakeAgent) -> None:
    # frames are cut wherever a read ends, inside UTF-8 sequences too; the agent decodes each
    # stream incrementally (docs/protocol.md), so what matters is that every byte arrives in order
    await fake.batch_run("", "", f"{PY} -c \"import sys; sys.stdout.write('é€😀' * 500_000)\"")
    assert len([t for t, _ in fake.frames if t == "stdout"]) > 1
    assert b"".join(p for t, p in fake.frames if t == "stdout").decode() == "é€😀" * 500_000


async def test_a_prompt_after_streaming_output_arrives_while_the_program_waits(fake: FakeAgent, work: Path) -> None:
    (work / "prompt.py").write_text(
        "import sys, time\n"
        "sys.stdout.write('x' * 4_000_000); sys.stdout.flush()\n"
        "sys.stdout.write('prompt> '); sys.stdout.flush()\n"
        "time.sleep(60)\n")
    task = asyncio.create_task(fake.batch_run("", "", f"{PY} prompt.py"))
    try:
        async with asyncio.timeout(10):  # the program sleeps far longer: the prompt was not held back
            while not fake.text().endswith("prompt> "):
                fake.frame_added.clear()
                await fake.frame_added.wait()
        assert not fake.controls()
    finally:
        await fake.batch.interrupt()
        await asyncio.wait_for(task, 10)


async def test_a_pipe_that_cannot_be_enlarged_is_read_without_pauses(fake: FakeAgent, monkeypatch) -> None:
    # the system refused F_SETPIPE_SZ (pipe-max-size, per-user pipe quota): the 64 KiB pipe fills in
    # microseconds, so a coalescing pause per read would throttle the writer to 64 KiB per pause
    monkeypatch.setattr(batch_io, "_enlarge", lambda fd: fcntl.fcntl(fd, batch_io.F_GETPIPE_SZ))
    monkeypatch.setattr(batch_pacing, "COALESCE", 0.05)
    start = time.monotonic()
    await fake.batch_run("", "", "head -c 16000000 /dev/zero | tr '\\0' x")
    assert len(fake.text()) == 16_000_000
    assert time.monotonic() - start < 6  # pausing 50 ms per 64 KiB would take over 12 s


async def test_every_step_reaps_its_program(fake: FakeAgent) -> None:
    for code in (0, 3):
        await fake.batch_run("", "", f"exit {code}")
        assert fake.controls()[-1] == ("finished", {"exitCode": code})
    await fake.batch_run("", "", "kill -TERM $$")
    assert fake.controls()[-1] == ("finished", {"exitCode": -signal.SIGTERM})

    def state(pid: int) -> str:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    assert [pid for pid in process_tree(os.getpid())[1:] if state(pid) == "Z"] == []


async def test_task_log_appended_when_logs_dir_exists(work: Path) -> None:
    (work / ".logs").mkdir()
    kid = str(uuid.uuid4())
    fake = await FakeAgent(work, "python", runtime=PY, env={"BACKENDAI_KERNEL_ID": kid}).start()
    try:
        await fake.batch_run("", "echo one", "echo two; echo three >&2")
        h = uuid.UUID(kid).hex
        log_file = work / ".logs" / "task" / h[:2] / h[2:4] / f"{h[4:]}.log"
        assert sorted(log_file.read_text().split()) == ["one", "three", "two"]
    finally:
        await fake.close()


async def test_no_kernel_id_means_no_task_log_and_no_error(work: Path) -> None:
    (work / ".logs").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "BACKENDAI_KERNEL_ID"}
    fake = FakeAgent(work, "python", runtime=PY)
    fake.child_env = {**env, "HOME": str(work)}
    await fake.start()
    try:
        await fake.batch_run("", "", "echo fine")
        assert fake.controls() == [("finished", {"exitCode": 0})] and fake.text() == "fine\n"
        assert list((work / ".logs").iterdir()) == []
    finally:
        await fake.close()


async def test_background_process_holding_the_pipes_does_not_hang_the_batch(fake: FakeAgent) -> None:
    start = time.monotonic()
    await fake.batch_run("", "", "sleep 30 & echo started")
    assert fake.controls() == [("finished", {"exitCode": 0})] and fake.text() == "started\n"
    assert time.monotonic() - start < 5
    pgids = set(fake.batch._pgids)
    assert pgids, "the leftover group is remembered for shutdown"
    await fake.batch.shutdown()
    assert not any(group_alive(pgid) for pgid in pgids)


async def test_run_script_streams_output_and_returns_the_code(fake: FakeAgent, work: Path) -> None:
    script = work / "bootstrap.sh"
    script.write_text("echo boot\nread x || exit 5\n")  # stdin is at EOF: nobody could answer
    assert await fake.batch.run_script(["/bin/sh", str(script)]) == 5
    assert fake.frames == [("stdout", b"boot\n")]


# --- interrupt --------------------------------------------------------------------------------

async def test_interrupt_reaches_the_whole_group(fake: FakeAgent) -> None:
    assert await fake.batch.interrupt() is False  # nothing runs
    task = asyncio.create_task(fake.batch_run("", "", f"{PY} -c 'print(1, flush=True)\nwhile True: pass'; echo after"))
    await fake.wait_frame("stdout")
    assert await fake.batch.interrupt() is True
    await asyncio.wait_for(task, 5)
    (ctl, payload), = fake.controls()
    assert ctl == "finished" and payload["exitCode"] != 0
    assert "KeyboardInterrupt" in fake.text("stderr")
    assert "after" not in fake.text()  # the shell got SIGINT too: the whole group


async def test_interrupt_escalates_to_sigkill(work: Path) -> None:
    fake = await FakeAgent(work, "python", runtime=PY, grace=0.5).start()
    try:
        task = asyncio.create_task(fake.batch_run("", "", "trap '' INT; echo ready; sleep 30"))
        await fake.wait_frame("stdout")
        start = time.monotonic()
        assert await fake.batch.interrupt()
        await asyncio.wait_for(task, 5)
        assert fake.controls() == [("finished", {"exitCode": -signal.SIGKILL})]
        assert 0.4 < time.monotonic() - start < 3
    finally:
        await fake.close()


# --- input ------------------------------------------------------------------------------------

async def test_python_input_over_the_socket_of_any_length(fake: FakeAgent, work: Path) -> None:
    (work / "main.py").write_text("a = input('first? ')\nb = input()\nprint(a, len(b), b[-3:])\n")
    long_text = "가나다" * 100_000 + "end"
    task = asyncio.create_task(fake.batch_run("", "*", "*"))
    await fake.wait_frame("waiting-input")
    assert fake.text() == "first? "  # the prompt came before waiting-input
    fake.inputs.put_nowait("Lablup")
    await fake.wait_frame("waiting-input", 2)
    fake.inputs.put_nowait(long_text)
    await asyncio.wait_for(task, 20)
    assert fake.controls() == [("waiting-input", None), ("waiting-input", None), ("finished", {"exitCode": 0})]
    assert fake.text().endswith(f"Lablup {len(long_text)} end\n")


async def test_stdin_readers_get_input_ops(fake: FakeAgent) -> None:
    task = asyncio.create_task(fake.batch_run("", "", "printf 'name? '; read a; read b; echo \"$a|$b\""))
    await fake.wait_frame("waiting-input")
    assert fake.text() == "name? "
    fake.inputs.put_nowait("x y")
    await fake.wait_frame("waiting-input", 2)
    fake.inputs.put_nowait("zé")
    await asyncio.wait_for(task, 10)
    assert fake.text() == "name? x y|zé\n"
    assert fake.controls()[-1] == ("finished", {"exitCode": 0})


async def test_ctrl_d_input_closes_stdin(fake: FakeAgent) -> None:
    task = asyncio.create_task(fake.batch_run("", "", "cat; echo done"))
    await fake.wait_frame("waiting-input")
    fake.inputs.put_nowait("line")
    await fake.wait_frame("waiting-input", 2)
    fake.inputs.put_nowait("\x04")
    await asyncio.wait_for(task, 10)
    assert fake.text() == "line\ndone\n"


async def test_interrupt_ends_a_socket_input_wait(fake: FakeAgent, work: Path) -> None:
    (work / "main.py").write_text("input('? ')\nprint('not reached')\n")
    task = asyncio.create_task(fake.batch_run("", "", f"{PY} main.py"))
    await fake.wait_frame("waiting-input")
    assert await fake.batch.interrupt() is True
    await asyncio.wait_for(task, 5)
    assert fake.controls()[-1][0] == "finished" and fake.controls()[-1][1]["exitCode"] != 0
    assert "not reached" not in fake.text()
    fake.inputs.put_nowait("late")  # nobody took it: it stays for the next request (docs/protocol.md#ordering)
    assert fake.inputs.qsize() == 1


async def test_socket_client_without_a_batch_child(fake: FakeAgent) -> None:
    reader, writer = await asyncio.open_unix_connection(fake.batch.user_input_socket)
    await fake.wait_frame("waiting-input")
    fake.inputs.put_nowait("ünïcode " * 10_000)
    data = await asyncio.wait_for(reader.read(), 5)
    assert data.decode() == "ünïcode " * 10_000
    writer.close()


# --- sitecustomize ----------------------------------------------------------------------------

def test_sitecustomize_is_ours_or_left_alone(tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert install_sitecustomize(site)
    assert MARKER in (site / "sitecustomize.py").read_text()
    (site / "sitecustomize.py").write_text("USER = 1\n")
    assert not install_sitecustomize(site)
    assert (site / "sitecustomize.py").read_text() == "USER = 1\n"


async def test_python_setup_puts_user_site_first_on_pythonpath(fake: FakeAgent, work: Path) -> None:
    """USER_SITE (with our sitecustomize) first, after only the drawing library (docs/runtimes.md)."""
    library, user_site = fake.child_env["PYTHONPATH"].split(os.pathsep)[:2]
    assert (Path(library) / "ai" / "backend" / "kernel" / "python" / "drawing").is_dir()
    assert user_site.startswith(str(work)) and (Path(user_site) / "sitecustomize.py").is_file()
