"""Query mode end to end: a real runner, a real ipykernel, the agent's own code-runner client."""
from __future__ import annotations

import asyncio
import json
import os
import sys

from tests.agentlib import console_items, stderr_of, stdout_of
from tests.runnerlib import RunnerProcess


async def test_print_and_expression_results(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    results = await agent.execute_until_done(None, "query", "print('hello'); x = 40")
    assert results[-1]["status"] == "finished" and results[-1]["exitCode"] == 0
    assert stdout_of(results) == "hello\n"
    results = await agent.execute_until_done(None, "query", "x + 2")
    assert stdout_of(results) == "42"  # a bare expression result: text/plain as stdout, no newline


async def test_error_gives_traceback_and_exit_code_1(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    results = await agent.execute_until_done(None, "query", "print('before'); 1/0")
    assert results[-1]["exitCode"] == 1
    assert "ZeroDivisionError" in stderr_of(results)
    assert stdout_of(results) == "before\n"


async def test_system_exit_codes(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    for code, expected in (("raise SystemExit(3)", 3), ("raise SystemExit()", 0), ("raise SystemExit('x')", 1)):
        results = await agent.execute_until_done(None, "query", code)
        assert results[-1]["exitCode"] == expected, (code, results)


async def test_input_round_trip_of_any_length(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    long_text = "가나다" * 50_000 + "end"
    answers = iter(["Lablup", long_text])
    seen: list[dict] = []

    def answer(result: dict) -> str:
        seen.append(result)
        return next(answers)

    results = await agent.execute_until_done(
        None, "query", "a = input('name? '); b = input(); print(a, len(b), b[-3:])", on_waiting_input=answer
    )
    assert [r["options"] for r in seen] == [{"is_password": False}, {"is_password": False}]
    assert "name? " in stdout_of(seen[0])
    assert results[-1]["status"] == "finished" and results[-1]["exitCode"] == 0
    assert stdout_of(results).endswith(f"Lablup {len(long_text)} end\n")


async def test_password_prompt_sets_is_password(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    seen: list[dict] = []
    results = await agent.execute_until_done(
        None, "query", "import getpass; print(len(getpass.getpass('pw: ')))",
        on_waiting_input=lambda r: seen.append(r) or "secret",
    )
    assert seen[0]["options"] == {"is_password": True}
    assert stdout_of(results).strip().endswith("6")


async def test_long_query_returns_continued(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    results = await agent.execute_until_done(
        None, "query", "import time\nprint('a', flush=True)\ntime.sleep(1.5)\nprint('b')", flush_timeout=0.5
    )
    statuses = [r["status"] for r in results]
    assert statuses[0] == "continued" and statuses[-1] == "finished"
    assert stdout_of(results) == "a\nb\n"


async def test_completion(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    await agent.execute_until_done(None, "query", "my_variable_name = 1")
    result = await agent.complete("pri", {"row": 0, "col": 3, "line": "pri", "post": ""})
    assert "print" in result["suggestions"]
    result = await agent.complete("my_var", {"post": " + 1"})
    assert "my_variable_name" in result["suggestions"]


async def test_completion_answers_on_bad_payload(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    await agent.execute_until_done(None, "query", "pass")  # the kernel is up
    # invalid JSON straight on the wire, then a normal completion: both get an answer, in order
    await agent.runner._sockets.send_multipart([b"complete", b"{not json"])
    result = await agent.complete("pri")
    assert result["suggestions"] == []
    result = await agent.complete("pri")
    assert "print" in result["suggestions"]


async def test_interrupt_busy_loop(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    first = await agent.execute(None, "query", "print('go', flush=True)\nwhile True: pass", flush_timeout=0.5)
    while "go" not in stdout_of(first):
        first = await agent.execute(first["runId"], "continue", flush_timeout=0.5)
    await agent.interrupt()
    run = asyncio.create_task(agent.execute_until_done(first["runId"], "continue", flush_timeout=0.3))
    results = await asyncio.wait_for(run, 15)
    assert results[-1]["status"] == "finished" and results[-1]["exitCode"] == 1
    assert "KeyboardInterrupt" in stderr_of(results)
    results = await agent.execute_until_done(None, "query", "print('still alive')")
    assert stdout_of(results) == "still alive\n"


async def test_interrupt_during_input_wait_ends_query(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    first = await agent.execute_until_done(None, "query", "x = input('? ')")
    assert first[-1]["status"] == "waiting-input"
    await agent.interrupt()
    results = await agent.execute_until_done(first[-1]["runId"], "continue", timeout=15)
    assert results[-1]["status"] == "finished" and results[-1]["exitCode"] != 0
    results = await agent.execute_until_done(None, "query", "print('next')")
    assert stdout_of(results) == "next\n"


async def test_rich_outputs_are_json_media(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    code = (
        "from IPython.display import HTML, Image, Markdown, display\n"
        "import base64\n"
        "png = base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
        "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==')\n"
        "display(HTML('<b>bold</b>'))\n"
        "display(Image(data=png, format='png'))\n"
        "display(Markdown('# title'))\n"
        "print('done')\n"
    )
    results = await agent.execute_until_done(None, "query", code)
    assert results[-1]["exitCode"] == 0
    media = [item[1] for item in console_items(results) if item[0] == "media"]
    types = [m[0] for m in media]
    assert types == ["text/html", "image/png", "text/markdown"]
    assert media[0][1] == "<b>bold</b>"
    assert media[1][1].startswith("data:image/png;base64,iVBOR")
    assert stdout_of(results) == "done\n"


async def test_clear_output_does_not_break(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    results = await agent.execute_until_done(
        None, "query", "from IPython.display import clear_output\nprint(1)\nclear_output()\nprint(2)"
    )
    assert results[-1]["exitCode"] == 0 and stdout_of(results) == "1\n2\n"


async def test_kernel_death_ends_query_and_kernel_restarts(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    # right after start-up on purpose: jupyter_client would give an early-dying kernel new ports
    await agent.execute_until_done(None, "query", "marker = 1")
    results = await agent.execute_until_done(None, "query", "import os; os._exit(7)", flush_timeout=0.5, timeout=20)
    assert results[-1]["status"] == "finished" and results[-1]["exitCode"] != 0
    assert "died" in stderr_of(results) and "restart" in stderr_of(results)
    results = await agent.execute_until_done(None, "query", "print('marker' in globals())", timeout=60)
    assert results[-1]["exitCode"] == 0 and stdout_of(results) == "False\n"


async def test_runtime_path_runs_the_kernel(runner_dirs, agent_client_factory, tmp_path) -> None:
    runtime = tmp_path / "bin" / "python3"
    runtime.parent.mkdir()
    runtime.symlink_to(sys.executable)
    proc = RunnerProcess("python", runner_dirs, runtime_path=str(runtime))
    await proc.start()
    try:
        agent = await agent_client_factory(proc.replin_port, proc.replout_port)
        results = await agent.execute_until_done(None, "query", "import sys, os; print(sys.executable); print(os.getcwd()); print(os.environ['HOME'])")
        lines = stdout_of(results).splitlines()
        assert lines == [str(runtime), str(runner_dirs["work"]), str(runner_dirs["work"])]
    finally:
        await proc.stop()


async def test_environ_txt_and_intrinsic_ports(runner_dirs, agent_client_factory) -> None:
    from tests.runnerlib import free_port

    (runner_dirs["config"] / "environ.txt").write_text("KRUNNER_TEST_VAR=hello=world\nOTHER=2\n")
    replin, replout = free_port(), free_port()
    (runner_dirs["config"] / "intrinsic-ports.json").write_text(json.dumps({"replin": replin, "replout": replout}))
    proc = RunnerProcess("python", runner_dirs, port_flags=False)  # the file must override the defaults
    proc.replin_port, proc.replout_port = replin, replout
    await proc.start()
    try:
        agent = await agent_client_factory(replin, replout)
        results = await agent.execute_until_done(None, "query", "import os; print(os.environ['KRUNNER_TEST_VAR'])")
        assert stdout_of(results) == "hello=world\n"
    finally:
        await proc.stop()


async def test_app_language_serves_query_mode(runner_dirs, agent_client_factory) -> None:
    proc = RunnerProcess("app", runner_dirs)
    await proc.start()
    try:
        agent = await agent_client_factory(proc.replin_port, proc.replout_port)
        results = await agent.execute_until_done(None, "query", "print(6*7)")
        assert stdout_of(results) == "42\n"
    finally:
        await proc.stop()


async def test_status_does_not_wait_for_the_kernel(runner: RunnerProcess, agent_client_factory) -> None:
    # RunnerProcess.start() returned on the first `status` answer; the kernel was still starting then
    log_text = runner.log()
    assert "serving the agent" in log_text
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    status = await agent.status(timeout=5)
    assert isinstance(status["started_at"], float)
    apps = await agent.get_apps()
    assert apps["status"] == "done" and isinstance(apps["data"], list)
    # a query sent right away waits for the kernel instead of failing
    results = await agent.execute_until_done(None, "query", "print('ready')")
    assert stdout_of(results) == "ready\n"


async def test_connection_file_of_main_kernel(runner: RunnerProcess, agent_client_factory) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    await agent.execute_until_done(None, "query", "shared_value = 1234")
    files = list(runner.dirs["runtime"].glob("kernel-*.json"))
    assert len(files) == 1
    from jupyter_client.blocking import BlockingKernelClient

    client = BlockingKernelClient()
    client.load_connection_file(str(files[0]))
    client.start_channels()
    outputs: list[dict] = []
    try:
        reply = client.execute_interactive("print(shared_value)", timeout=20, output_hook=lambda m: outputs.append(m))
    finally:
        client.stop_channels()
    assert reply["content"]["status"] == "ok"
    assert any(m["msg_type"] == "stream" and m["content"]["text"] == "1234\n" for m in outputs)


def test_env_isolation() -> None:
    import tempfile

    assert os.environ["HOME"].startswith(tempfile.gettempdir())


async def test_missing_runtime_dir_is_created(runner_dirs, agent_client_factory) -> None:
    runner_dirs["runtime"] = runner_dirs["runtime"] / "not" / "there" / "yet"
    proc = RunnerProcess("python", runner_dirs)
    await proc.start()
    try:
        agent = await agent_client_factory(proc.replin_port, proc.replout_port)
        results = await agent.execute_until_done(None, "query", "print('ok')")
        assert stdout_of(results) == "ok\n"
        assert list(runner_dirs["runtime"].glob("kernel-*.json"))
    finally:
        await proc.stop()
