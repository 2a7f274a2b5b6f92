"""The preloaded main kernel (docs/performance.md#the-preloaded-main-kernel): the Python kernel's
interpreter starts before the runner's imports and becomes the main kernel only when it is the same
process a plain launch would make; otherwise the launch is plain."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import comm
import pytest

from ai.backend.kernel.languages.python import python_preload_argv
from tests.agentlib import stdout_of
from tests.runnerlib import REPO, RunnerProcess

FACTS = """
import builtins, json, os, sys
print(json.dumps({
    "site hooks run": getattr(builtins, "KRB_SITE_RUNS", 0),
    "session leader": os.getsid(0) == os.getpid() == os.getpgid(0),
    "parent": os.getppid(), "cwd": os.getcwd(), "argv": sys.argv, "path": sys.path,
    "flags": str(sys.flags), "xoptions": sys._xoptions, "executable": sys.executable,
    "env": {k: v for k, v in os.environ.items() if k not in ("JPY_PARENT_PID",)},
    "JPY_PARENT_PID": os.environ.get("JPY_PARENT_PID"), "pid": os.getpid(),
}))
"""


def make_dirs(root: Path) -> dict[str, Path]:
    dirs = {name: root / name for name in ("work", "config", "runtime")}
    for path in dirs.values():
        path.mkdir(parents=True)
    (dirs["config"] / "environ.txt").write_text("KRB_FROM_ENVIRON=yes\n")
    return dirs


async def kernel_facts(agent) -> dict:
    results = await agent.execute_until_done(None, "query", FACTS)
    assert results[-1]["exitCode"] == 0, results
    return json.loads(stdout_of(results))


def preloaded_pid(log: str) -> int:
    found = re.search(r"main kernel's interpreter preloading \(pid (\d+)\)", log)
    assert found, log
    return int(found.group(1))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] == "Z"


async def test_the_main_kernel_is_the_preloaded_interpreter_as_a_plain_launch_makes_it(
        tmp_path: Path, agent_client_factory) -> None:
    # a distribution's sitecustomize (Debian has one), which ours in the user site runs after it
    hooks = tmp_path / "site-hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text("import builtins\n"
                                           "builtins.KRB_SITE_RUNS = getattr(builtins, 'KRB_SITE_RUNS', 0) + 1\n")
    entries = [str(REPO), *os.environ.get("PYTHONPATH", "").split(os.pathsep), str(hooks)]
    python_path = os.pathsep.join(dict.fromkeys(filter(None, entries)))  # CI's PYTHONPATH has REPO already
    facts = {}
    for name, args in (("preloaded", []), ("plain", ["--RunnerApp.preload_kernel=False"])):
        dirs = make_dirs(tmp_path / name)
        runner = RunnerProcess("python", dirs, extra_args=args, env={"PYTHONPATH": python_path})
        await runner.start()
        try:
            facts[name] = await kernel_facts(await agent_client_factory(runner.replin_port, runner.replout_port))
            facts[name]["runner"] = runner.proc.pid
        finally:
            await runner.stop()
        log = runner.log()
        if name == "preloaded":
            assert f"main kernel runs in the preloaded interpreter (pid {preloaded_pid(log)})" in log, log
            assert preloaded_pid(log) == facts[name]["pid"]
        else:
            assert "preloading" not in log, log
    for name, seen in facts.items():
        assert seen["session leader"], name  # as jupyter_client's launch makes it: interrupts reach its group
        assert seen["parent"] == seen["runner"] == int(seen["JPY_PARENT_PID"]), name
        assert seen["env"]["KRB_FROM_ENVIRON"] == "yes" and seen["env"]["HOME"] == seen["cwd"], name
        assert seen["xoptions"] == {"frozen_modules": "off"}, name
        assert seen["site hooks run"] == 1, name  # the distribution's hook, once
        python_path = list(dict.fromkeys(seen["env"]["PYTHONPATH"].split(os.pathsep)))  # sys.path has no duplicates
        stdlib = next(i for i, p in enumerate(seen["path"]) if p.endswith("lib-dynload"))
        assert [p for p in seen["path"][:stdlib] if p in python_path] == python_path, name  # before the stdlib
        root = str(tmp_path / name)
        for key in ("pid", "runner", "parent", "JPY_PARENT_PID"):
            del seen[key]
        facts[name] = json.loads(re.sub(r"kernel-[0-9a-f-]{36}", "kernel-<id>", json.dumps(seen).replace(root, "<root>")))
    assert facts["preloaded"] == facts["plain"]


async def test_a_launch_that_would_import_other_code_is_a_plain_launch(
        runner_dirs: dict[str, Path], agent_client_factory) -> None:
    """A package in the kernel's user site that shadows one the preloaded interpreter imported
    (here a copy of `comm`): a plain launch imports the user's, so the preloaded one steps aside."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    user_site = runner_dirs["work"] / ".local" / "lib" / version / "site-packages"
    shutil.copytree(Path(comm.__file__).parent, user_site / "comm")
    runner = RunnerProcess("python", runner_dirs)
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        facts = await kernel_facts(agent)
        log = runner.log()
        preloaded = preloaded_pid(log)
        assert "would shadow the imported 'comm'" in log and "launched as usual, not preloaded" in log, log
        assert facts["pid"] != preloaded and gone(preloaded)
        results = await agent.execute_until_done(None, "query", "import comm; print(comm.__file__)")
        assert stdout_of(results).startswith(str(user_site)), results
    finally:
        await runner.stop()


async def test_a_runner_stopped_before_the_launch_leaves_no_preloaded_interpreter(
        runner_dirs: dict[str, Path]) -> None:
    runner = RunnerProcess("python", runner_dirs)
    await runner.start()  # returns once `status` is answered, before the kernel is launched
    pid = preloaded_pid(runner.log())
    assert await runner.stop() == 0
    assert gone(pid)


def preloaded_interpreter(tmp_path: Path, python_path: str = str(REPO)) -> tuple[subprocess.Popen, socket.socket]:
    ours, theirs = socket.socketpair()
    env = {**os.environ, "PYTHONPATH": python_path, "HOME": str(tmp_path), "KRUNNER_COMPLETION_HELPER": "0"}
    process = subprocess.Popen([*python_preload_argv(sys.executable), str(theirs.fileno())], env=env,
                               cwd=tmp_path, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
    theirs.close()
    return process, ours


@pytest.mark.parametrize("change, answer", [
    ({"PYTHONHASHSEED": "7"}, "no: PYTHONHASHSEED differs from the preloaded interpreter's"),
    ({"LANG": os.environ.get("LANG", "") + ".other"}, "no: LANG differs from the preloaded interpreter's"),
    ({"argv0": "/usr/bin/false"}, "no: another interpreter (/usr/bin/false)"),
    ({"garbage": True}, "no: bad launch"),
])
def test_the_preloaded_interpreter_refuses_what_it_cannot_be(tmp_path: Path, change: dict, answer: str) -> None:
    process, channel = preloaded_interpreter(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(tmp_path), "KRUNNER_COMPLETION_HELPER": "0"}
    argv = [*python_preload_argv(sys.executable)[:-1], "-f", str(tmp_path / "kernel.json")]
    if "argv0" in change:
        argv[0] = change.pop("argv0")
    launch = b"{not json\n" if change.pop("garbage", False) else json.dumps(
        {"argv": argv, "env": {**env, **change}, "cwd": str(tmp_path)}).encode() + b"\n"
    with channel:
        channel.sendall(launch)
        channel.settimeout(60)
        reply = channel.makefile("rb").readline().decode()
    assert reply.startswith(answer), reply
    assert process.wait(30) == 0


def test_the_preloaded_interpreter_exits_when_the_runner_goes_away(tmp_path: Path) -> None:
    process, channel = preloaded_interpreter(tmp_path)
    channel.close()
    assert process.wait(60) == 0


async def test_a_runtime_without_ipykernel_gets_a_plain_kernel_under_ours(
        runner_dirs: dict[str, Path], tmp_path: Path, agent_client_factory) -> None:
    """RUNTIME_PATH is a venv without ipykernel: the preloaded interpreter (that venv's) cannot
    become the kernel, which runs under the runner's own interpreter."""
    import venv

    venv.EnvBuilder(with_pip=False).create(tmp_path / "bare")
    runner = RunnerProcess("python", runner_dirs, runtime_path=str(tmp_path / "bare" / "bin" / "python"))
    await runner.start()
    try:
        agent = await agent_client_factory(runner.replin_port, runner.replout_port)
        facts = await kernel_facts(agent)
        log = runner.log()
        assert facts["executable"] == sys.executable and gone(preloaded_pid(log)), log
        assert "has no ipykernel" in log and "launched as usual, not preloaded" in log, log
    finally:
        await runner.stop()


def test_a_foreign_sitecustomize_on_the_new_path_is_refused(tmp_path: Path) -> None:
    """The interpreter ran one sitecustomize at its start; a user's own one first on the launch's
    PYTHONPATH would have run instead. (Ours, which runs the next one, is accepted: test above.)"""
    first, users = tmp_path / "first", tmp_path / "users"
    for path in (first, users):
        path.mkdir()
        (path / "sitecustomize.py").write_text(f"# {path.name}\n")
    process, channel = preloaded_interpreter(tmp_path, os.pathsep.join([str(REPO), str(first)]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(users), str(REPO), str(first)]), "HOME": str(tmp_path),
           "KRUNNER_COMPLETION_HELPER": "0"}
    argv = [*python_preload_argv(sys.executable)[:-1], "-f", str(tmp_path / "kernel.json")]
    with channel:
        channel.sendall(json.dumps({"argv": argv, "env": env, "cwd": str(tmp_path)}).encode() + b"\n")
        channel.settimeout(60)
        reply = channel.makefile("rb").readline().decode()
    assert reply == f"no: {users} in the new PYTHONPATH would shadow the imported 'sitecustomize'\n", reply
    assert process.wait(30) == 0
