"""The runner's cold paths (docs/performance.md, "Cold paths (runner start-up and first query)") and
the idle wait of a query (docs/query-mode.md)."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ai.backend.kernel import queryexec
from ai.backend.kernel.queryexec import QueryExecution
from tests.runnerlib import REPO, RunnerProcess

# What the runner may import before it binds the agent sockets and answers `status`.
HEAVY = ("jupyter_client", "tornado", "ai.backend.kernel.kernels", "ai.backend.kernel.bridge",
         "ai.backend.kernel.batch", "ai.backend.kernel.services", "ai.backend.kernel.gateway.app")


def test_the_path_to_status_imports_nothing_heavy() -> None:
    probe = ("import sys\n"
             "from ai.backend.kernel import __main__, runner\n"
             "from ai.backend.kernel.app import RunnerApp\n"
             "app = RunnerApp(); app.initialize(['--replin-port', '1', '--debug', 'python'])\n"
             "runner.Runner\n"
             f"print([m for m in {HEAVY!r} if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_runner_binds_before_typing_subsystem_options_then_types_them() -> None:
    """The runner's own command line (`defer_subsystem_options`): options of batch, services and
    the kernel hub do not pull their modules in before the bind, and get their types afterwards."""
    probe = ("import sys\n"
             "from ai.backend.kernel.app import RunnerApp\n"
             "app = RunnerApp(); app.defer_subsystem_options = True\n"
             "app.initialize(['--batch-kill-grace', '2.5', '--intrinsic-services', 'sshd',\n"
             "                '--KernelHub.restart_poll_interval=0.25', 'python'])\n"
             f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
             "app.type_subsystem_options('KernelHub')\n"
             "hub_only = (app.config.KernelHub.restart_poll_interval, 'ai.backend.kernel.batch' in sys.modules)\n"
             "app.type_subsystem_options()\n"
             "print(heavy, hub_only, app.config.BatchExecutor.kill_grace,\n"
             "      app.config.ServiceManager.intrinsic_services, app.extra_args)\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] (0.25, False) 2.5 ['sshd'] ['python']", out.stdout


async def test_a_bad_subsystem_option_value_ends_the_runner_with_a_message(runner_dirs: dict[str, Path]) -> None:
    """Typed after the bind, a bad value still stops the runner non-zero, saying which option."""
    runner = RunnerProcess("python", runner_dirs, extra_args=["--batch-kill-grace", "soon"])
    returncode, text = await runner.run_to_exit()
    assert returncode not in (0, None), text
    assert "krunner: bad command-line option value" in text and "kill_grace" in text, text


async def test_agent_ports_in_use_end_the_runner_with_a_message(runner_dirs: dict[str, Path]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        runner = RunnerProcess("python", runner_dirs)
        runner.replin_port = taken.getsockname()[1]
        returncode, text = await runner.run_to_exit()
    assert returncode not in (0, None), text
    assert f"krunner: cannot listen for the agent on 127.0.0.1:{runner.replin_port}" in text, text


def test_a_subsystem_option_on_the_command_line_is_still_typed() -> None:
    from ai.backend.kernel.app import RunnerApp

    app = RunnerApp()
    app.parse_command_line(["--batch-kill-grace", "2.5", "python"])
    assert app.config.BatchExecutor.kill_grace == 2.5


@pytest.fixture
def short_grace(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(queryexec, "IDLE_GRACE", 0.2)
    return 0.2


async def test_a_lost_idle_ends_the_query_once_its_iopub_is_quiet(short_grace: float) -> None:
    loop = asyncio.get_running_loop()
    execution = QueryExecution("m", loop.create_future())
    execution.replied = True
    started = loop.time()
    execution.arm_idle_grace(short_grace)
    await asyncio.wait_for(execution.done, 5)
    assert execution.idle and loop.time() - started >= short_grace


async def test_output_being_handed_to_a_slow_agent_keeps_the_query_open(short_grace: float) -> None:
    loop = asyncio.get_running_loop()
    execution = QueryExecution("m", loop.create_future())
    execution.replied = True
    execution.output_started()  # the pump is blocked sending this message to the agent
    execution.arm_idle_grace(short_grace)
    await asyncio.sleep(short_grace * 4)
    assert not execution.done.done()
    execution.output_ended()
    ended = loop.time()
    await asyncio.wait_for(execution.done, 5)
    assert loop.time() - ended >= short_grace * 0.9  # the grace counts from the last output


def test_the_bash_kernel_does_not_import_ipython_terminal_until_used() -> None:
    probe = ("import sys\n"
             "from ai.backend.kernel.languages.shell.earlystart import skip_ipython_terminal\n"
             "skip_ipython_terminal()\n"
             "import ipykernel.kernelapp, IPython\n"
             "from ai.backend.kernel.languages.bash import kernel\n"
             "before = 'prompt_toolkit' in sys.modules\n"
             "from IPython.terminal.embed import InteractiveShellEmbed\n"
             "print(before, 'prompt_toolkit' in sys.modules, callable(IPython.embed), InteractiveShellEmbed.__name__)\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True", "InteractiveShellEmbed"], out.stdout


async def test_the_bash_kernel_listens_on_its_ports_long_before_it_answers(tmp_path: Path) -> None:
    """Its ports listen before ipykernel is imported (clients are not left to libzmq's 0.1–0.2 s
    reconnect interval), and ipykernel serves them (shell/earlystart.py)."""
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.connect import write_connection_file

    connection_file, info = write_connection_file(str(tmp_path / "kernel.json"))
    started = asyncio.get_running_loop().time()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ai.backend.kernel.languages.bash.kernel", "-f", connection_file, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    client = AsyncKernelClient(connection_file=connection_file)
    client.load_connection_file()
    try:
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", info["shell_port"])) == 0:
                    listening = asyncio.get_running_loop().time() - started
                    break
            await asyncio.sleep(0.005)
        client.start_channels(hb=False)
        await client.wait_for_ready(timeout=60)
        ready = asyncio.get_running_loop().time() - started
        reply = await client.execute_interactive("echo early", timeout=30, output_hook=lambda msg: None)
    finally:
        client.stop_channels()
        proc.terminate()
        await proc.wait()
    assert reply["content"]["status"] == "ok"
    assert listening < ready * 0.5, (listening, ready)
