"""The main kernel's interpreter, started before the runner's own imports
(docs/performance.md#the-preloaded-main-kernel).

A Python kernel spends ~0.4 s importing ipykernel before it can answer, and the runner spends
~0.25 s between its own exec and launching the kernel (interpreter, traitlets, asyncio,
jupyter_client, the connection file). `preload_main_kernel` runs right after the agent sockets are
bound: the kernel's interpreter starts its imports at once, in a session of its own as
jupyter_client's launch would make it. When jupyter_client then launches the main kernel, the
`PreloadedProvisioner` (provisioner.py) hands that launch to this process instead of starting
another one. The process checks that it can become exactly the kernel a plain launch would start
(same interpreter, same interpreter-start settings; `kernel_launcher.py`), or says why not and
exits; the launch then happens as usual. Only the first launch of the main kernel's spec uses it.

Light on purpose (stdlib only): it runs before anything heavy is imported.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HAND_OVER_TIMEOUT = 30.0  # s for the preloaded interpreter to finish its imports and answer
# what jupyter_client's provisioner passes to Popen that a preloaded process can honour
_LAUNCH_KEYS = {"env", "cwd", "independent", "kernel_id", "extra_arguments"}


class Preloaded:
    """One interpreter started with the language's preload argv (the launch's argv up to its own
    arguments, then one flag), waiting on a socket for its launch."""

    def __init__(self, process: subprocess.Popen[bytes], channel: socket.socket, argv: Sequence[str]) -> None:
        self.process, self.channel, self.argv = process, channel, list(argv)

    @classmethod
    def start(cls, argv: Sequence[str], env: Mapping[str, str], cwd: str) -> Preloaded | None:
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen([*argv, str(theirs.fileno())], env=dict(env), cwd=cwd,
                                       stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
                                       start_new_session=True)
        except OSError as e:
            log.warning("cannot preload the main kernel's interpreter: %s", e)
            ours.close()
            return None
        finally:
            theirs.close()
        log.debug("main kernel's interpreter preloading (pid %d)", process.pid)
        return cls(process, ours, argv)

    async def hand_over(self, cmd: Sequence[str], env: Mapping[str, str], cwd: str) -> str:
        """Send the launch; the interpreter's answer: "ok", or why it cannot become that kernel."""
        import asyncio

        loop = asyncio.get_running_loop()
        self.channel.setblocking(False)
        launch = {"argv": list(cmd), "env": dict(env), "cwd": cwd}
        reply = b""
        try:
            await loop.sock_sendall(self.channel, json.dumps(launch).encode() + b"\n")
            while not reply.endswith(b"\n"):
                chunk = await loop.sock_recv(self.channel, 4096)
                if not chunk:
                    return "it exited before answering"
                reply += chunk
        except OSError as e:
            return f"it cannot be reached ({e})"
        finally:
            self.channel.close()
        return reply.decode(errors="replace").strip()

    def discard(self) -> None:
        self.channel.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


_waiting: Preloaded | None = None


def preload_main_kernel(app: Any) -> None:
    """Start the main kernel's interpreter now, when its language has a preload argv and the main
    kernel is that language's own spec. The environment is the one the runner gives its children
    (environment.build_child_env), so that the launch later finds everything fixed at interpreter
    start unchanged."""
    global _waiting
    from .environment import build_child_env, read_environ_txt
    from .languages import get_language

    language = get_language(app.lang)
    work_dir = Path(app.work_dir)
    if (not app.preload_kernel or language.preload_argv is None or not work_dir.is_dir()
            or (app.kernel_name or language.kernelspec) != language.kernelspec):
        return
    environ = read_environ_txt(Path(app.config_dir) / "environ.txt")
    env = build_child_env(work_dir, {**language.child_env, **environ}, language.path_prepend)
    env.update(app.kernel_env)
    env["JPY_PARENT_PID"] = str(os.getpid())
    _waiting = Preloaded.start(language.preload_argv(language.resolve_runtime(app.runtime_path_arg)),
                               env, str(work_dir))


def waiting() -> bool:
    return _waiting is not None


async def take(cmd: Sequence[str], kwargs: Mapping[str, Any]) -> subprocess.Popen[bytes] | None:
    """The preloaded process, become the kernel `cmd` and `kwargs` (jupyter_client's launch
    arguments) describe; None when there is none or it cannot be (then launch as usual)."""
    global _waiting
    preloaded, _waiting = _waiting, None
    if preloaded is None:
        return None
    cmd = [os.path.expanduser(arg) for arg in cmd]  # as jupyter_client's launch_kernel does
    env = dict(kwargs.get("env") or os.environ)
    if not kwargs.get("independent"):
        env["JPY_PARENT_PID"] = str(os.getpid())
    unusable = set(kwargs) - _LAUNCH_KEYS
    if unusable or cmd[:len(preloaded.argv) - 1] != preloaded.argv[:-1]:
        why = f"launch options {sorted(unusable)}" if unusable else "another command line"
    else:
        import asyncio

        try:
            answer = await asyncio.wait_for(
                preloaded.hand_over(cmd, env, str(kwargs.get("cwd") or os.getcwd())), HAND_OVER_TIMEOUT)
        except TimeoutError:
            answer = f"no answer within {HAND_OVER_TIMEOUT:g} s"
        if answer == "ok":
            log.debug("main kernel runs in the preloaded interpreter (pid %d)", preloaded.process.pid)
            return preloaded.process
        why = answer.removeprefix("no: ")
    log.info("main kernel launched as usual, not preloaded: %s", why)
    preloaded.discard()
    return None


def discard() -> None:
    """Stop a preloaded interpreter nothing took (the runner stops, or the main kernel is another)."""
    global _waiting
    preloaded, _waiting = _waiting, None
    if preloaded is not None:
        preloaded.discard()
