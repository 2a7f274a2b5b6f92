"""Batch mode end to end: a real runner per language, driven by the agent's own code-runner client
with calls spaced like REST round trips, so a frame falling into the agent's gap would be lost."""
from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.agentlib import stderr_of, stdout_of
from tests.runnerlib import RunnerProcess
from tests import toolcheck

GAP = 0.05  # seconds between client calls (a REST round trip)
STAR = {"clean": "", "build": "*", "exec": "*"}
# Languages other than Python start no Jupyter kernel here: batch mode does not need one, and the
# machine has 2 cores. (`--kernel-name` of a kernelspec that does not exist disables query mode.)
NO_KERNEL = ["--kernel-name", "krunner-test-no-kernel"]

HELLO_C = '#include <stdio.h>\n#include "greet.h"\nint main(void) { greet("c"); return 0; }\n'
GREET_C = '#include <stdio.h>\nvoid greet(const char *who) { printf("hello %s\\n", who); }\n'

PROGRAMS: dict[str, tuple[str, dict[str, str], str, tuple[str, ...]]] = {
    # case: (LANG, files, expected stdout, required tools)
    "python": ("python", {"main.py": "import sys\nprint('hello python', sys.version_info[0])\n"},
               "hello python 3\n", ()),
    "c": ("c", {"main.c": HELLO_C, "lib/greet.c": GREET_C, "greet.h": "void greet(const char *);\n"},
          "hello c\n", ("gcc",)),
    "c-makefile": ("c", {"main.c": '#include <stdio.h>\nint main(void){puts("made " WHO);return 0;}\n',
                         "Makefile": "main: main.c\n\t@gcc -DWHO='\"by make\"' -o main main.c\n"},
                   "made by make\n", ("gcc", "make")),
    "cpp": ("cpp", {"main.cpp": '#include <iostream>\nint main(){std::cout << "hello cpp" << std::endl;}\n'},
            "hello cpp\n", ("g++",)),
    "golang": ("golang", {"main.go": 'package main\nimport "fmt"\nfunc main() { fmt.Println("hello", helper()) }\n',
                          "helper.go": 'package main\nfunc helper() string { return "go" }\n'},
               "hello go\n", ("go",)),
    "rust": ("rust", {"Cargo.toml": '[package]\nname = "hello"\nversion = "0.1.0"\nedition = "2021"\n',
                      "src/main.rs": 'fn main() { println!("hello rust"); }\n'},
             "hello rust\n", ("cargo",)),
    "java": ("java", {"Main.java": 'public class Main { public static void main(String[] a) {'
                                   ' System.out.println("hello " + Util.name()); } }\n',
                      "Util.java": 'public class Util { static String name() { return "java"; } }\n'},
             "hello java\n", ("javac",)),
    "nodejs": ("nodejs", {"main.js": "console.log('hello', 'node')\n"}, "hello node\n", ("node",)),
    "lua": ("lua", {"main.lua": "print('hello lua')\n"}, "hello lua\n", ("lua5.4",)),
    "php": ("php", {"main.php": "<?php echo \"hello php\\n\";\n"}, "hello php\n", ("php",)),
    "r": ("r", {"main.R": 'cat("hello R\\n")\n'}, "hello R\n", ("Rscript",)),
    "octave": ("octave", {"main.m": 'printf("hello octave\\n");\n'}, "hello octave\n", ("octave-cli",)),
    "scheme": ("scheme", {"main.scm": '(display "hello scheme")\n(newline)\n'}, "hello scheme\n", ("mit-scheme",)),
    "haskell": ("haskell", {"main.hs": 'main :: IO ()\nmain = putStrLn "hello haskell"\n'},
                "hello haskell\n", ("ghc",)),
    "shell": ("shell", {"main.sh": 'echo "hello $0"\n'}, "hello main.sh\n", ("bash",)),
}


def _tool_missing(tools: tuple[str, ...]) -> str | None:
    extra_path = "/root/.cargo/bin"
    for tool in tools:
        if not (shutil.which(tool) or shutil.which(tool, path=extra_path)):
            return tool
    return None


Start = Callable[..., Awaitable[tuple[RunnerProcess, object]]]


@pytest.fixture
async def start_runner(runner_dirs: dict[str, Path], agent_client_factory) -> AsyncIterator[Start]:
    started: list[RunnerProcess] = []

    async def start(lang: str, *, kernel: bool = False, extra_args: list[str] | None = None):
        proc = RunnerProcess(lang=lang, dirs=runner_dirs,
                             extra_args=[*(extra_args or []), *([] if kernel else NO_KERNEL)],
                             runtime_path=sys.executable if lang in ("python", "app") else None)
        await proc.start()
        started.append(proc)
        agent = await agent_client_factory(proc.replin_port, proc.replout_port)
        return proc, agent

    try:
        yield start
    finally:
        for proc in started:
            await proc.stop()


def _write(work: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)


@pytest.mark.parametrize("case", list(PROGRAMS))
async def test_build_and_exec_star(case: str, start_runner: Start, runner_dirs: dict[str, Path]) -> None:
    lang, files, expected, tools = PROGRAMS[case]
    missing = _tool_missing(tools)
    if missing:
        toolcheck.missing(missing, "not on PATH; .ci/install.d/40-batch.sh")
    _write(runner_dirs["work"], files)
    proc, agent = await start_runner(lang)
    results = await agent.execute_until_done(None, "batch", opts=STAR, gap=GAP, timeout=120)
    assert results[-1]["status"] == "finished", results
    assert results[-1]["exitCode"] == 0, (results, proc.log()[-3000:])
    assert stdout_of(results).endswith(expected), results  # ghc reports its progress on stdout
    assert {r["status"] for r in results} <= {"continued", "finished"}  # one run, nothing dropped
    assert [t for t in agent.received_types() if t not in ("stdout", "stderr")] == ["finished"]


async def test_failing_build_shows_its_output_then_finished_127(start_runner: Start, runner_dirs) -> None:
    _write(runner_dirs["work"], {"main.c": "int main(void) { return missing_function(); }\n"})
    proc, agent = await start_runner("c")
    results = await agent.execute_until_done(None, "batch", opts={"clean": "*", "build": "*", "exec": "*"}, gap=GAP)
    assert results[-1]["status"] == "finished" and results[-1]["exitCode"] == 127, results
    stderr = stderr_of(results)
    assert "missing_function" in stderr and "exec skipped" in stderr
    assert not (runner_dirs["work"] / "main").exists()


async def test_legacy_frames_option(start_runner: Start, runner_dirs) -> None:
    _write(runner_dirs["work"], {"main.py": "print('legacy')\n"})
    proc, agent = await start_runner("python", extra_args=["--legacy-batch-frames"])
    results = await agent.execute_until_done(None, "batch", opts=STAR, gap=GAP)
    frames = [t for t in agent.received_types() if t not in ("stdout", "stderr")]
    assert frames == ["clean-finished", "build-finished", "finished"]
    assert results[-1]["status"] == "finished"


async def test_interactive_main_py_reads_two_lines(start_runner: Start, runner_dirs) -> None:
    _write(runner_dirs["work"], {"main.py": "a = input('first? ')\nb = input('second? ')\nprint(f'{a}+{b}')\n"})
    proc, agent = await start_runner("python", kernel=True)
    answers = iter(["Lablup", "백엔드" * 2000])
    prompts: list[str] = []

    def answer(result: dict) -> str:
        prompts.append(stdout_of(result))
        return next(answers)

    results = await agent.execute_until_done(None, "batch", opts=STAR, gap=GAP, on_waiting_input=answer)
    assert results[-1]["status"] == "finished" and results[-1]["exitCode"] == 0, results
    assert prompts[0].endswith("first? ") and prompts[1].endswith("second? ")
    assert stdout_of(results).endswith("Lablup+" + "백엔드" * 2000 + "\n")


async def test_c_program_reads_stdin_through_input_ops(start_runner: Start, runner_dirs) -> None:
    _write(runner_dirs["work"], {"main.c": '#include <stdio.h>\nint main(void){char b[64];'
                                 'if(!fgets(b,sizeof b,stdin))return 1;printf("got %s",b);return 0;}\n'})
    proc, agent = await start_runner("c")
    results = await agent.execute_until_done(None, "batch", opts=STAR, gap=GAP, on_waiting_input=lambda r: "42")
    assert results[-1]["exitCode"] == 0 and stdout_of(results).endswith("got 42\n"), results


async def test_interrupt_an_endless_loop_started_through_the_shell(start_runner: Start, runner_dirs) -> None:
    proc, agent = await start_runner("python")
    loop = f"{sys.executable} -c 'print(\"spinning\", flush=True)\nwhile True: pass'"
    first = await agent.execute(None, "batch", "", {"clean": "", "build": "", "exec": loop}, flush_timeout=1.0)
    assert first["status"] == "continued" and "spinning" in stdout_of(first)
    await asyncio.sleep(GAP)
    start = time.monotonic()
    assert (await agent.interrupt())["status"] == "finished"
    await asyncio.sleep(GAP)
    results = await agent.execute_until_done(first["runId"], "continue", gap=GAP, timeout=10)
    assert results[-1]["status"] == "finished" and results[-1]["exitCode"] != 0, results
    assert "KeyboardInterrupt" in stderr_of(results)
    assert time.monotonic() - start < 2  # SIGINT did it, not the SIGKILL escalation
    # the runner is usable afterwards
    results = await agent.execute_until_done(None, "batch", opts={"exec": "echo again"}, gap=GAP)
    assert stdout_of(results) == "again\n"


async def test_julia_reports_its_missing_toolchain(start_runner: Start, runner_dirs) -> None:
    if shutil.which("julia"):
        pytest.skip("julia is installed here")
    _write(runner_dirs["work"], {"main.jl": 'println("hi")\n'})
    proc, agent = await start_runner("julia")
    results = await agent.execute_until_done(None, "batch", opts=STAR, gap=GAP)
    assert results[-1]["exitCode"] == 127
    assert "julia" in stderr_of(results) and "Traceback" not in stderr_of(results)


async def test_no_batch_child_outlives_the_runner(start_runner: Start, runner_dirs) -> None:
    from ai.backend.kernel.procfacts import group_alive

    proc, agent = await start_runner("python")
    first = await agent.execute(None, "batch", "", {"exec": "echo $$; sleep 300"}, flush_timeout=1.0)
    assert first["status"] == "continued", first
    pgid = int(stdout_of(first).split()[0])  # the shell leads its own process group
    assert group_alive(pgid)
    start = time.monotonic()
    await proc.stop()
    assert time.monotonic() - start < 5
    assert not group_alive(pgid)
