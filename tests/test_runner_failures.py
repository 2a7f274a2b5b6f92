"""Nothing lost silently and nothing reaches a shell that is not shell text: real runners, driven by
the agent's own client (docs/architecture.md; issue 11's items in the restructured modules)."""
from __future__ import annotations

import socket
import sys
from pathlib import Path

from tests.agentlib import AgentClient, stdout_of
from tests.runnerlib import RunnerProcess, free_port
from tests.test_services_e2e import runner_env, write_defs

PY = sys.executable
NO_KERNEL = ["--kernel-name", "krunner-test-no-kernel"]


class NoInputSocketRunner(RunnerProcess):
    """A runner whose user-input socket cannot be created (its directory does not exist)."""

    @property
    def argv(self) -> list[str]:
        argv = super().argv
        argv[argv.index("--user-input-socket") + 1] = str(self.dirs["runtime"] / "no-such-dir" / "input.sock")
        return argv


async def test_batch_input_without_an_input_channel_is_eof(runner_dirs: dict[str, Path], agent_client_factory) -> None:
    """No user-input socket (it cannot be created): `input()` raises EOFError, never fake text."""
    (runner_dirs["work"] / "main.py").write_text(
        "try:\n    print('got', repr(input('name? ')))\nexcept EOFError as e:\n    print('EOFError:', e)\n")
    runner = NoInputSocketRunner("python", runner_dirs, runtime_path=PY, extra_args=NO_KERNEL)
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        results = await agent.execute_until_done(None, "batch", opts={"clean": "", "build": "", "exec": "*"})
        out = stdout_of(results)
        assert results[-1]["status"] == "finished" and results[-1]["exitCode"] == 0, results
        assert "EOFError: no user input channel" in out and "got" not in out, out
        assert "waiting-input" not in agent.received_types()
    finally:
        await runner.stop()


async def test_gateway_that_cannot_listen_ends_the_runner(runner_dirs: dict[str, Path]) -> None:
    """`--gateway-port` of a port in use: the runner exits non-zero, saying why, within seconds."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runner = RunnerProcess("python", runner_dirs, extra_args=[*NO_KERNEL, "--gateway-port", str(port)])
        returncode, text = await runner.run_to_exit()
    assert returncode not in (0, None), text
    assert f"krunner: the gateway cannot listen on 127.0.0.1:{port}" in text, text


async def test_service_start_failures_carry_their_cause(runner_dirs: dict[str, Path], tmp_path: Path,
                                                        agent_client_factory) -> None:
    """A failed start says what failed: a missing executable, a model dir that does not exist."""
    write_defs(runner_dirs["config"] / "service-defs", {"ghost": {"command": ["/no/such/program", "{ports[0]}"]}})
    runner = RunnerProcess("python", runner_dirs, extra_args=NO_KERNEL, env=runner_env(tmp_path))
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        await agent.wait_ready()
        result = await agent.start_service(AgentClient.service_payload("ghost", [free_port()], "http"))
        assert result == {"status": "failed", "error": "the executable file is not found: /no/such/program"}
        port = free_port()
        missing = tmp_path / "no-model-here"
        result = await agent.start_model_service({"name": "m", "model_path": str(missing), "service": {
            "start_command": [PY, "-m", "http.server", str(port)], "port": port}})
        assert result == {"status": "failed",
                          "error": f"service failed to start: the model directory does not exist: {missing}"}
    finally:
        await runner.stop()


async def test_values_in_service_shell_text_stay_one_word(runner_dirs: dict[str, Path], tmp_path: Path,
                                                          agent_client_factory) -> None:
    """A value interpolated into a definition's shell command (here a prestart command's output
    holding `;` and `$(...)`) reaches the program as text and is never run by the shell."""
    work = runner_dirs["work"]
    write_defs(runner_dirs["config"] / "service-defs", {"quoted": {
        "prestart": [{"action": "run_command", "args": {"command": ["printf", "a; touch pwned1 $(touch pwned2)"]},
                      "ref": "v"}],
        "command": "printf '%s' {v[out]} > result.txt && exec " + PY + " -m http.server {ports[0]} --bind 127.0.0.1",
    }})
    runner = RunnerProcess("python", runner_dirs, extra_args=NO_KERNEL, env=runner_env(tmp_path))
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        await agent.wait_ready()
        result = await agent.start_service(AgentClient.service_payload("quoted", [free_port()], "http"))
        assert result == {"status": "started"}, result
        assert (work / "result.txt").read_text() == "a; touch pwned1 $(touch pwned2)"
        assert not (work / "pwned1").exists() and not (work / "pwned2").exists()
    finally:
        await runner.stop()
