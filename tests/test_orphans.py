"""Nothing the runner started outlives it, even when the runner is SIGKILLed (docs/services.md#dying-with-the-runner).

A real runner starts its kernel (which starts a program of its own), service-definition apps (one
leaving a grandchild in its process group), a prestart command, a web-terminal shell with a
background job and a batch program; its whole process tree is collected with psutil, the runner is SIGKILLed, and every
process of that tree must be gone within a few seconds.
"""
from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from ai.backend.kernel.procfacts import pdeathsig_argv
from tests.agentlib import AgentClient
from tests.runnerlib import RunnerProcess, free_port
from tests.test_services import _read_terminal_until, port_open, wait_port
from tests.test_services_e2e import runner_env, write_defs

PY = sys.executable
GONE_WITHIN = 5.0  # seconds: ipykernel polls its parent once a second


def survivors(tree: list[psutil.Process]) -> list[str]:
    """Processes of `tree` still alive (zombies waiting for a late reaper do not count)."""
    alive = []
    for proc in tree:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{proc.pid} {proc.cmdline()}")
        except psutil.NoSuchProcess:
            continue
    return alive


async def kill_and_watch(runner: RunnerProcess, tree: list[psutil.Process]) -> float:
    """SIGKILL the runner; seconds until nothing of `tree` is left (AssertionError naming the
    survivors, after killing them, when something stays longer than GONE_WITHIN)."""
    assert runner.proc is not None
    t0 = time.monotonic()
    runner.proc.send_signal(signal.SIGKILL)
    await runner.proc.wait()
    while survivors(tree):
        if time.monotonic() - t0 > GONE_WITHIN:
            left = survivors(tree)
            for proc in tree:
                try:
                    proc.kill()
                except psutil.NoSuchProcess:
                    pass
            raise AssertionError(f"still alive {GONE_WITHIN} s after the runner was SIGKILLed: {left}")
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


def runner_tree(runner: RunnerProcess) -> list[psutil.Process]:
    assert runner.proc is not None
    return psutil.Process(runner.proc.pid).children(recursive=True)


async def test_services_and_kernel_die_with_a_killed_runner(runner_dirs: dict[str, Path], tmp_path: Path,
                                                            agent_client_factory) -> None:
    from tornado.websocket import websocket_connect

    from ai.backend.kernel.services.intrinsic import find_binary
    from ai.backend.kernel.services.terminal import available as terminado_available

    if not pdeathsig_argv():
        pytest.fail("setpriv with --pdeathsig is missing (util-linux); .ci/install.d should provide it")
    stamp = tmp_path / "prestart-ran"
    write_defs(runner_dirs["config"] / "service-defs", {
        "web": {"command": [PY, "-m", "http.server", "{ports[0]}", "--bind", "127.0.0.1"]},
        # a grandchild in the service's process group, then the service itself
        "family": {"command": f"sleep 300 & exec {PY} -m http.server {{ports[0]}} --bind 127.0.0.1"},
        # a prestart command still running when the runner dies (it never ends by itself)
        "slowprep": {"command": [PY, "-m", "http.server", "{ports[0]}", "--bind", "127.0.0.1"],
                     "prestart": [{"action": "run_command",
                                   "args": {"command": ["sh", "-c", f"touch {stamp}; exec sleep 300"]}}]},
    })
    ttyd_port = free_port()
    (runner_dirs["config"] / "intrinsic-ports.json").write_text(json.dumps({"ttyd": ttyd_port}))
    runner = RunnerProcess("python", runner_dirs, env=runner_env(tmp_path, "ttyd"))
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        await agent.wait_ready()
        # the kernel starts a program of its own (in the kernel's session, not a direct child of the runner)
        code = "import subprocess; subprocess.Popen(['sleep', '301']); print('kernel up')"
        result = await agent.execute_until_done(None, "query", code, timeout=60)
        assert "kernel up" in json.dumps(result)
        ports = {name: free_port() for name in ("web", "family")}
        for name, port in ports.items():
            assert await agent.start_service(AgentClient.service_payload(name, [port], "http")) == {"status": "started"}
        slow = asyncio.create_task(agent.start_service(AgentClient.service_payload("slowprep", [free_port()], "http")))
        deadline = time.monotonic() + 10
        while not stamp.exists():
            assert time.monotonic() < deadline, "the prestart command never ran"
            await asyncio.sleep(0.05)
        await wait_port(ttyd_port)
        if not find_binary("ttyd") and terminado_available():
            ws = await websocket_connect(f"ws://127.0.0.1:{ttyd_port}/websocket")
            ws.write_message(json.dumps(["stdin", "sleep 302 &\r"]))  # a background job of the shell
            ws.write_message(json.dumps(["stdin", "echo hi\r"]))
            await _read_terminal_until(
                ws, lambda m: "".join(p[1] for p in [json.loads(m)] if p[0] == "stdout"), r"(?:^|[\r\n])hi\r?\n")
        # a batch program still running (its exec step outlasts the agent's flush timeout)
        secs = str(random.randint(100_000, 999_999))
        first = await agent.execute("orphan-batch", "batch", opts={"exec": f"sleep {secs}"})
        assert first["status"] == "continued", first
        tree = runner_tree(runner)
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        assert f"sleep {secs}" in names, names
        # the Python kernel (started through kernel_launcher.py, which runs ipykernel_launcher)
        for expected in ("kernel_launcher", "http.server", "sleep 300", "sleep 301"):
            assert expected in names, names
        elapsed = await kill_and_watch(runner, tree)
        slow.cancel()
    finally:
        await runner.stop()
    assert not any(port_open(p) for p in (*ports.values(), ttyd_port))
    print(f"{len(tree)} processes gone {elapsed:.2f} s after the runner's SIGKILL")


KERNEL_CASES = {
    # a REPL kernel whose interpreter starts a background program immune to the pty's hangup (its
    # shell exits at once, so the program is re-parented: only its session ties it to the kernel)
    "lua": ("lua", [], ("lua5.4",), 'os.execute("nohup sleep {secs} >/dev/null 2>&1 &") print("up")'),
    # IRkernel has no parent poller of its own: only the reaper ends it
    "ir": ("r", ["--kernel-name", "ir"], ("R",), 'system("sleep {secs}", wait = FALSE); cat("up")'),
}


def processes_running(argv: list[str]) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if proc.info["cmdline"] == argv:
            found.append(proc)
    return found


@pytest.mark.parametrize("case", sorted(KERNEL_CASES))
async def test_kernels_and_their_programs_die_with_a_killed_runner(case: str, runner_dirs: dict[str, Path],
                                                                   agent_client_factory) -> None:
    from tests.toolcheck import require_tool

    lang, args, tools, code = KERNEL_CASES[case]
    require_tool(*tools)
    secs = str(random.randint(100_000, 999_999))  # names the program uniquely on a shared machine
    runner = RunnerProcess(lang, runner_dirs, extra_args=args, env={"KRUNNER_INTRINSIC_SERVICES": ""})
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        await agent.wait_ready()
        result = await agent.execute_until_done(None, "query", code.replace("{secs}", secs), timeout=90)
        assert "up" in json.dumps(result), result
        deadline = time.monotonic() + 5
        while not (programs := processes_running(["sleep", secs])):
            assert time.monotonic() < deadline, "the kernel's program did not start"
            await asyncio.sleep(0.1)
        tree = runner_tree(runner) + programs
        elapsed = await kill_and_watch(runner, tree)
    finally:
        await runner.stop()
    print(f"{case}: {len(tree)} processes gone {elapsed:.2f} s after the runner's SIGKILL")


PARENT = """
import asyncio, sys, time
from ai.backend.kernel.services.process import ServiceProcess

async def main():
    proc = await ServiceProcess.spawn("sleeper", ["sleep", sys.argv[1]], {"PATH": "/usr/bin:/bin"}, ".")
    print(proc.pid, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


async def test_a_service_dies_by_its_death_signal_alone(tmp_path: Path) -> None:
    """Without the reaper (this parent never starts one), the setpriv prefix alone ends a service
    when its parent is SIGKILLed; the service lives as long as the parent does, so the thread that
    forked it (asyncio's, the main thread) is not a short-lived one."""
    if not pdeathsig_argv():
        pytest.fail("setpriv with --pdeathsig is missing (util-linux)")
    secs = str(random.randint(100_000, 999_999))
    parent = await asyncio.create_subprocess_exec(
        PY, "-c", PARENT, secs, cwd=str(Path(__file__).resolve().parents[1]), stdout=asyncio.subprocess.PIPE)
    assert parent.stdout is not None
    child = None
    try:
        child = psutil.Process(int(await asyncio.wait_for(parent.stdout.readline(), 20)))
        await asyncio.sleep(1.0)
        assert child.is_running() and child.cmdline() == ["sleep", secs]
        parent.kill()
        await parent.wait()
        deadline = time.monotonic() + 2
        while survivors([child]):
            assert time.monotonic() < deadline, "the service outlived its SIGKILLed parent"
            await asyncio.sleep(0.02)
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
        if child is not None and survivors([child]):
            child.kill()


async def test_a_runner_stopped_during_ssh_key_generation_reaps_it(runner_dirs: dict[str, Path]) -> None:
    """sshd's key generation runs right after the main kernel is ready: a runner stopped then ends
    and reaps it itself, rather than leaving a zombie (or, without the death signal, an orphan)
    for init."""
    from ai.backend.kernel.services.intrinsic import find_binary

    if not find_binary("dropbearkey"):
        pytest.fail("dropbearkey is missing; .ci/install.d should provide it")
    runner = RunnerProcess("python", runner_dirs)
    await runner.start()
    assert runner.proc is not None
    keygen = None
    deadline = time.monotonic() + 30
    while keygen is None:
        assert time.monotonic() < deadline, "no key generation was seen"
        for child in psutil.Process(runner.proc.pid).children():
            try:
                if child.name() == "dropbearkey":
                    keygen = child
            except psutil.NoSuchProcess:
                continue
        await asyncio.sleep(0.005)
    assert await runner.stop() == 0
    assert not keygen.is_running(), f"dropbearkey {keygen.pid} outlived the runner ({keygen.status()})"
