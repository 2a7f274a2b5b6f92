"""Command line. The agent contract comes first: `python -m ai.backend.kernel [--debug] LANG [RUNTIME_PATH]`
(plus options, see `--help-all`); extra subcommands follow it (`gateway`).

The agent sockets are bound here, right after the options are parsed and before asyncio and the
rest of the runner are imported: the agent connects before we are up and libzmq retries a refused
connection only every 0.1 s, so a bind that misses the agent's first retry costs its `status`
0.1 s (docs/performance.md#cold-paths-runner-start-up-and-first-query). Right after the bind the
main kernel's interpreter is started (preload.py): its imports overlap all of ours.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import zmq

if TYPE_CHECKING:
    from .app import RunnerApp

SUBCOMMANDS = {"gateway": "ai.backend.kernel.gateway.__main__"}


def bind_agent_sockets(ip: str, replin: int, replout: int) -> tuple[zmq.Context, zmq.Socket, zmq.Socket]:
    """The agent's PULL (replin) and PUSH (replout) sockets, bound; the runner drives them with
    zmq.asyncio. Raises zmq.ZMQError when a port cannot be bound."""
    ctx = zmq.Context()
    insock, outsock = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    insock.linger = 0
    # at most 16 frames (<= 16 MiB) wait here for a slow agent; query output beyond that waits
    # in the bridge's spill queue, batch output in the child's pipe (docs/query-mode.md#slow-agents)
    outsock.sndhwm = 16
    try:
        insock.bind(f"tcp://{ip}:{replin}")
        outsock.bind(f"tcp://{ip}:{replout}")
    except zmq.ZMQError:
        ctx.destroy(linger=0)
        raise
    return ctx, insock, outsock


def usage() -> NoReturn:
    from .languages import names

    langs = ", ".join(names())
    sys.exit(f"usage: python -m ai.backend.kernel [--debug] [options] LANG [RUNTIME_PATH]\nLANG is one of: {langs}")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
        return
    from .app import RunnerApp

    app = RunnerApp()
    app.defer_subsystem_options = True  # typed once the sockets are bound (Runner.serve)
    app.initialize(argv)
    if not app.extra_args or len(app.extra_args) > 2:
        usage()
    from .environment import read_intrinsic_ports

    intrinsic_ports = read_intrinsic_ports(Path(app.config_dir) / "intrinsic-ports.json")
    replin, replout = app.agent_ports(intrinsic_ports)
    try:
        sockets = bind_agent_sockets(app.bind_ip, replin, replout)
    except zmq.ZMQError as e:
        sys.exit(f"krunner: cannot listen for the agent on {app.bind_ip}:{replin}/{replout}: {e}")
    # after the bind: the language table, and the language's module for the log prefix
    from . import preload
    from .languages import get_language, names
    from .logsetup import configure_logging

    if app.extra_args[0] not in names():
        usage()
    app.log = configure_logging(get_language(app.lang).prefix, app.debug)
    # right after the bind: the main kernel's interpreter, whose imports then overlap all of ours
    # (docs/performance.md#the-preloaded-main-kernel)
    preload.preload_main_kernel(app)
    app.log.info("serving the agent on %s:%d (in) / %d (out)", app.bind_ip, replin, replout)
    try:
        run(app, sockets, intrinsic_ports)
    finally:
        preload.discard()  # when the runner stops before the main kernel's launch took it


def run(app: RunnerApp, sockets: tuple[zmq.Context, zmq.Socket, zmq.Socket], intrinsic_ports: dict[str, int]) -> None:
    """The runner, on the bound agent sockets, until it stops."""
    import asyncio

    from .runner import Runner, StartupError

    try:
        asyncio.run(Runner(app, sockets, intrinsic_ports).serve())
    except StartupError as e:
        sys.exit(f"krunner: {e}")


if __name__ == "__main__":
    main()
