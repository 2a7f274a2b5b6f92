"""Prestart actions of service definitions (docs/services.md#prestart-actions), run before each
start of a service.

Each action gets the interpolation variables and its `args`; its return value is stored under the
action's `ref` for later interpolation. Unlike the original, `write_file(append=true)` appends.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidServiceDefinition
from .interpolation import interpolate
from .process import dying_with_runner
from .reaper import watch_session

log = logging.getLogger(__name__)


@dataclass
class ActionContext:
    """What actions may use from the runner: the children's env and the working directory."""

    env: Mapping[str, str]
    cwd: Path
    tempdir: str | None = None


def _lines(body: Any, variables: Mapping[str, Any]) -> list[str]:
    if isinstance(body, str):
        body = [body]
    if not isinstance(body, list) or not all(isinstance(b, str) for b in body):
        raise InvalidServiceDefinition("'body' must be a list of strings")
    return interpolate(body, variables)


def _mode(mode: str | int) -> int:
    try:
        return int(str(mode), 8)
    except ValueError as e:
        raise InvalidServiceDefinition(f"invalid file mode: {mode!r}") from e


def _one(text: Any, variables: Mapping[str, Any], what: str) -> str:
    if not isinstance(text, str):
        raise InvalidServiceDefinition(f"'{what}' must be a string")
    return interpolate([text], variables)[0]


async def write_file(
    ctx: ActionContext, variables: Mapping[str, Any], filename: str, body: list[str],
    mode: str = "644", append: bool = False,
) -> None:
    path = Path(ctx.cwd, _one(filename, variables, "filename"))
    text = "".join(line + "\n" for line in _lines(body, variables))
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        f.write(text)
    path.chmod(_mode(mode))


async def write_tempfile(
    ctx: ActionContext, variables: Mapping[str, Any], body: list[str], mode: str = "644",
) -> str:
    text = "".join(_lines(body, variables))
    fd, name = tempfile.mkstemp(suffix=".py", dir=ctx.tempdir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(name, _mode(mode))
    return name


async def run_command(
    ctx: ActionContext, variables: Mapping[str, Any], command: list[str], echo: bool = False,
) -> dict[str, str]:
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise InvalidServiceDefinition("'command' of run_command must be a list of strings")
    argv = interpolate(command, variables)
    proc = await asyncio.create_subprocess_exec(
        *dying_with_runner(argv, ctx.env, ctx.cwd), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=dict(ctx.env), cwd=ctx.cwd, start_new_session=True,
    )
    watch_session(proc.pid)
    out, err = await proc.communicate()
    result = {"out": out.decode("utf-8", "replace"), "err": err.decode("utf-8", "replace")}
    if echo:
        for stream, text in result.items():
            if text:
                log.info("run_command %s (%s):\n%s", argv[0], stream, text.rstrip("\n"))
    if proc.returncode:
        log.warning("prestart command %s exited with %d", argv, proc.returncode)
    return result


async def mkdir(ctx: ActionContext, variables: Mapping[str, Any], path: str) -> None:
    Path(ctx.cwd, _one(path, variables, "path")).mkdir(parents=True, exist_ok=True)


async def log_action(
    ctx: ActionContext, variables: Mapping[str, Any], message: str | None = None,
    debug: bool = False, body: str | None = None,
) -> None:
    # The original's docs call the argument `body`, its code `message`: accept both.
    text = _one(message if message is not None else (body or ""), variables, "message")
    log.log(logging.DEBUG if debug else logging.INFO, "%s", text)


ActionFunc = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Action:
    func: ActionFunc

    def check_args(self, args: Mapping[str, Any]) -> None:
        """Fail at load time for arguments the action does not take or misses."""
        try:
            inspect.signature(self.func).bind(None, None, **args)
        except TypeError as e:
            raise InvalidServiceDefinition(f"{self.func.__name__}: {e}") from e


ACTIONS: dict[str, Action] = {
    "write_file": Action(write_file),
    "write_tempfile": Action(write_tempfile),
    "run_command": Action(run_command),
    "mkdir": Action(mkdir),
    "log": Action(log_action),
}


async def run_actions(
    actions: list[Any], ctx: ActionContext, variables: dict[str, Any],
) -> None:
    """Run prestart actions in order; each `ref` result becomes a variable for the next ones."""
    for act in actions:
        result = await ACTIONS[act.action].func(ctx, variables, **act.args)
        if act.ref:
            variables[act.ref] = result
