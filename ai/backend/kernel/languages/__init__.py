"""Language registry: what each `LANG` of the agent contract runs on and how.

One package per language (`languages/<name>/`): its `__init__.py` declares a `LANGUAGE` (runtime,
environment, batch heuristics), its optional `kernel.py` is the language's own Jupyter kernel.

Batch heuristics (`build "*"`, `exec "*"`, `clean "*"`) are small functions of a `BatchContext`
returning a `Plan`: the argv lists to run one after the other, or an exit code with a message when
there is nothing to run. They never start processes themselves, so they stay a few lines each and
`batch.py` alone owns process handling (process groups, streaming, interrupt, input).
"""
from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# LANG on the command line -> package holding its definition (aliases share one package).
_PACKAGES: dict[str, str] = {
    "python": "python",
    "app": "app",
    "c": "c",
    "cpp": "cpp",
    "golang": "golang",
    "rust": "rust",
    "java": "java",
    "nodejs": "nodejs",
    "lua": "lua",
    "php": "php",
    "r": "r",
    "julia": "julia",
    "octave": "octave",
    "haskell": "haskell",
    "scheme": "scheme",
    "git": "shell",
    "shell": "shell",
    "vendor.aws_polly": "vendor.aws_polly",
    "vendor.h2o": "vendor.h2o",
}


class ToolMissing(Exception):
    """A heuristic needs a program that is not installed; batch mode reports it and exits 127."""

    def __init__(self, tool: str, hint: str = "") -> None:
        super().__init__(tool)
        self.tool = tool
        self.hint = hint


@dataclass(frozen=True)
class Plan:
    """What a heuristic decided: argv lists run in order (stop at the first failure), or, when
    `steps` is empty, `exit_code` with `message` (on stderr when non-zero, else only logged)."""

    steps: tuple[tuple[str, ...], ...] = ()
    exit_code: int = 0
    message: str = ""


@dataclass
class BatchContext:
    """What a heuristic may look at: the work dir, the runtime path and the child environment."""

    lang: str
    work_dir: Path
    runtime: str
    env: Mapping[str, str]
    install_hint: str = ""

    def exists(self, *names: str) -> str | None:
        """The first of `names` that is a file in the work dir."""
        for name in names:
            if (self.work_dir / name).is_file():
                return name
        return None

    def find(self, suffix: str) -> list[str]:
        """Work-dir-relative paths of every `*<suffix>` file, sorted, skipping hidden dirs."""
        found = []
        for root, dirs, files in os.walk(self.work_dir):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            rel = Path(root).relative_to(self.work_dir)
            found.extend(str(rel / f) for f in sorted(files) if f.endswith(suffix))
        return sorted(found)

    def which(self, name: str) -> str | None:
        """`name` (absolute, or looked up in the child's PATH) if it is an executable file."""
        if os.path.isabs(name):
            return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
        return shutil.which(name, path=self.env.get("PATH", os.defpath))

    def tool(self, *candidates: str, hint: str | None = None) -> str:
        """The first installed candidate. An absolute candidate that is missing is also looked up by
        its base name in PATH (so `/usr/bin/rustc` finds rustup's rustc). Raises `ToolMissing`."""
        for cand in candidates:
            if not cand:
                continue
            found = self.which(cand) or (self.which(os.path.basename(cand)) if os.path.isabs(cand) else None)
            if found:
                return found
        names = ", ".join(c for c in candidates if c)
        raise ToolMissing(names, self.install_hint if hint is None else hint)

    def sibling(self, tool: str, name: str) -> str:
        """`name` next to the resolved `tool` (javac beside java, cargo beside rustc), else in PATH."""
        return self.tool(os.path.join(os.path.dirname(tool), name), name)

    # Plan constructors, so heuristics read as one line each.
    @staticmethod
    def run(*argv: str) -> Plan:
        return Plan(steps=(tuple(argv),))

    @staticmethod
    def run_all(steps: list[list[str]] | list[tuple[str, ...]]) -> Plan:
        return Plan(steps=tuple(tuple(s) for s in steps))

    def no_entry(self, what: str) -> Plan:
        return Plan(exit_code=127, message=f"{self.lang}: cannot find {what} in the working directory.")

    @staticmethod
    def skip(message: str = "") -> Plan:
        return Plan(exit_code=0, message=message)


Heuristic = Callable[[BatchContext], Plan]
# Start-up hook: given the child environment built so far, returns the variables to add or change.
SetupHook = Callable[[BatchContext], Awaitable[Mapping[str, str]]]
MAKEFILES = ("Makefile", "makefile", "GNUmakefile")


def _nothing(ctx: BatchContext) -> Plan:
    return Plan()


@dataclass(frozen=True)
class Language:
    """How one language is run: by its Jupyter kernel (query mode) and by subprocesses (batch)."""

    name: str
    kernelspec: str | None  # exact kernelspec name used for query mode
    default_runtime: str  # RUNTIME_PATH when the agent gives none
    log_prefix: str = ""
    child_env: dict[str, str] = field(default_factory=dict)
    path_prepend: tuple[str, ...] = ()
    # batch mode: `"*"` heuristics (build `"*"` runs `make` first when a Makefile exists)
    build: Heuristic = _nothing
    exec: Heuristic = _nothing
    clean: Heuristic = _nothing
    install_hint: str = ""  # how to get the toolchain, quoted when it is missing
    # called once by the runner at start-up, after the child env is built; returns env additions
    setup: SetupHook | None = None
    # argv of the query-mode kernel given (RUNTIME_PATH, child env), replacing its kernelspec's argv
    kernel_argv: Callable[[str, Mapping[str, str]], list[str]] | None = None
    # argv that starts the kernel's interpreter ahead of its launch, given RUNTIME_PATH (preload.py)
    preload_argv: Callable[[str], list[str]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return self.log_prefix or f"{self.name}-kernel"

    async def run_setup(self, work_dir: Path, runtime: str, child_env: dict[str, str]) -> None:
        """The start-up hook: what the children need in their environment goes into `child_env`."""
        if self.setup is not None:
            child_env.update(await self.setup(BatchContext(self.name, work_dir, runtime, child_env, self.install_hint)))

    def resolve_runtime(self, given: str | None) -> str:
        """RUNTIME_PATH: the one the agent gave, else the language's default (for Python, the
        runner's own interpreter when the default does not exist)."""
        if given:
            return given
        if self.kernelspec == "python" and not os.path.exists(self.default_runtime):
            return sys.executable
        return self.default_runtime


def names() -> list[str]:
    """Every LANG the command line accepts."""
    return list(_PACKAGES)


def get_language(name: str) -> Language:
    """The `Language` for a LANG of the agent contract; KeyError for an unknown one."""
    package = _PACKAGES[name]
    module = importlib.import_module(f"{__name__}.{package}")
    language: Language = module.LANGUAGE
    return language


# Shared heuristic pieces -------------------------------------------------------------------------


def make_clean(ctx: BatchContext) -> Plan:
    """`make clean` when a Makefile exists (C, C++), else nothing to do."""
    if ctx.exists(*MAKEFILES):
        return ctx.run(ctx.tool("make", hint="apt-get install make"), "clean")
    return ctx.skip("no Makefile: nothing to clean")


def run_binary(ctx: BatchContext, *names: str) -> Plan:
    """Exec heuristic of compiled languages: the first of `./<name>` that exists."""
    for name in names:
        path = ctx.work_dir / name
        if path.is_file() and os.access(path, os.X_OK):
            return ctx.run(f"./{name}")
    return ctx.no_entry(" or ".join(f"./{n}" for n in names) + " (build it first)")


def interpret(*tools: str, entry: str, args: tuple[str, ...] = ()) -> Heuristic:
    """Exec heuristic of interpreted languages: `<runtime> [args] <entry>` when `entry` exists."""

    def heuristic(ctx: BatchContext) -> Plan:
        if not ctx.exists(entry):
            return ctx.no_entry(entry)
        return ctx.run(ctx.tool(ctx.runtime, *tools), *args, entry)

    return heuristic
