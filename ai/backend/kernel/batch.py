"""Batch mode: the `clean`/`build`/`exec` ops (PROTOCOL §3, §5, §7) and bootstrap scripts.

`""` skips a step, `"*"` runs the language's heuristic (`build "*"` runs `make` first when there is
a Makefile), anything else runs through `/bin/sh -c` with the runner's child environment.

Finish frames follow PROTOCOL "deliberately differs" 10: the agent ends a run at `clean-finished`
and `build-finished` and drops what arrives before the client's next call, so a step that has the
next step of the same batch queued behind it sends no finish frame of its own; a failing build with
an `exec` behind it ends the batch with `finished {"exitCode": 127}` (the build's exit code is
stated on stderr) and the queued `exec` is then skipped silently. The runner trait
`legacy_batch_frames` restores the original sequence exactly (every step sends its frame, a failed
build makes the next `exec` answer `finished 127` at once, finish frames after a 10 ms pause).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .batch_io import BatchChild, group_alive
from .languages import BatchContext, Plan, ToolMissing
from .userinput import UserInputServer

if TYPE_CHECKING:
    from .runner import Runner

log = logging.getLogger(__name__)

FINISH_FRAMES = {"clean": "clean-finished", "build": "build-finished", "exec": "finished"}
NEXT_STEP = {"clean": "build", "build": "exec"}
MAKEFILES = ("Makefile", "makefile", "GNUmakefile")


class BatchExecutor:
    """Runs batch steps one at a time (the runner's serial queue calls `run`)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        app = getattr(runner, "app", None)
        self.interrupt_grace = float(getattr(app, "batch_kill_grace", 2.0))
        self.followup_wait = float(getattr(app, "batch_followup_wait", 0.05))
        self.input_poll_interval = float(getattr(app, "batch_input_poll_interval", 0.1))
        self.socket_path = str(getattr(app, "user_input_socket", "/tmp/bai-user-input.sock"))
        self._children: set[BatchChild] = set()
        self._pgids: set[int] = set()  # every group we started, for shutdown
        self._build_failed = False  # PROTOCOL §5.3
        self._swallow_exec = False  # the batch already ended with `finished 127`
        self._inputs: UserInputServer | None = None
        self._escalations: set[asyncio.Task] = set()  # SIGKILL timers may outlive their step

    @property
    def legacy(self) -> bool:
        return bool(getattr(getattr(self.runner, "app", None), "legacy_batch_frames", False))

    async def start(self) -> None:
        """Serve the user-input socket; a failure to bind is logged, never fatal."""
        self._inputs = UserInputServer(self.socket_path, self.runner.send, self.runner.next_user_input,
                                       before_prompt=self._settle_children)
        try:
            await self._inputs.start()
        except OSError as e:
            log.warning("cannot listen on the user-input socket %s: %s", self.socket_path, e)
            self._inputs = None

    # ops ---------------------------------------------------------------------------------------

    async def run(self, op: str, command: str) -> None:
        """One queued `clean`/`build`/`exec`: its output frames, then its finish frame (see top)."""
        if op == "exec" and self._swallow_exec:
            self._swallow_exec = False
            log.debug("exec skipped: its batch already finished after a failed build")
            return
        if op == "exec" and self._build_failed:
            self._build_failed = False
            await self.runner.send("finished", {"exitCode": 127})
            return
        try:
            code = await self._step(op, command)
        except Exception as e:
            log.exception("batch %s failed", op)
            await self._say(f"batch {op} failed inside the runner: {e}")
            code = -1
        if self.legacy:
            if op == "build":
                self._build_failed = code != 0
            await asyncio.sleep(0.01)
            await self.runner.send(FINISH_FRAMES[op], {"exitCode": code})
            return
        if op in NEXT_STEP and await self._followed_by(NEXT_STEP[op]):
            if code == 0:
                return
            if op == "clean":  # the original goes on with the build after a failed clean
                await self._say(f"clean exited with code {code}; continuing with the build")
                return
            await self._say(f"build failed with exit code {code}; exec skipped")
            self._swallow_exec = True
            await self.runner.send("finished", {"exitCode": 127})
            return
        if op == "build":
            self._build_failed = code != 0
        await self.runner.send(FINISH_FRAMES[op], {"exitCode": code})

    async def run_script(self, argv: list[str]) -> int:
        """Run e.g. bootstrap.sh: output frames, no finish frame; its exit code."""
        return await self._spawn(argv, dict(self.runner.child_env), interactive=False)

    async def interrupt(self) -> bool:
        """SIGINT to every running batch child's process group and end batch input waits."""
        hit = False
        for child in list(self._children):
            escalation = child.interrupt(self.interrupt_grace)
            if escalation is not None:
                hit = True
                self._escalations.add(escalation)
                escalation.add_done_callback(self._escalations.discard)
        if self._inputs is not None:
            hit = self._inputs.interrupt() or hit
        return hit

    async def shutdown(self) -> None:
        """Bounded (< 3 s): stop input waits, TERM then KILL every group we started."""
        if self._inputs is not None:
            await self._inputs.close()
        for task in list(self._escalations):
            task.cancel()
        groups = [g for g in self._pgids if _signal_group(g, signal.SIGTERM)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.5
        while groups and loop.time() < deadline:
            await asyncio.sleep(0.05)
            groups = [g for g in groups if group_alive(g)]
        for g in groups:
            _signal_group(g, signal.SIGKILL)
        self._pgids.clear()

    # steps -------------------------------------------------------------------------------------

    async def _followed_by(self, op: str) -> bool:
        """Whether `op` is queued right behind the running step. The agent sends its three frames
        back to back, but the runner may still be reading them: give it `followup_wait`."""
        waiter = getattr(self.runner, "wait_next_queued_op", None)
        if waiter is not None:
            return await waiter(self.followup_wait) == op
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.followup_wait
        while True:
            queued = self.runner.next_queued_op()
            if queued is not None or loop.time() >= deadline:
                return queued == op
            await asyncio.sleep(0.002)

    async def _step(self, op: str, command: str) -> int:
        if not command:
            log.debug("%s skipped (empty command)", op)
            return 0
        env = dict(self.runner.child_env)
        env["KRUNNER_USER_INPUT_SOCKET"] = self.socket_path
        if op == "exec":
            env["_BACKEND_BATCH_MODE"] = "1"
        if command != "*":
            return await self._spawn(["/bin/sh", "-c", command], env)
        ctx = BatchContext(self.runner.language.name, Path(self.runner.work_dir), self.runner.runtime_path,
                           env, self.runner.language.install_hint)
        try:
            if op == "build" and ctx.exists(*MAKEFILES):
                plan = ctx.run(ctx.tool("make", hint="apt-get install make"))
            else:
                plan = getattr(self.runner.language, op)(ctx)
        except ToolMissing as e:
            hint = f" ({e.hint})" if e.hint else ""
            await self._say(f"{ctx.lang}: required toolchain not found: {e.tool}{hint}")
            return 127
        return await self._run_plan(op, plan, env)

    async def _run_plan(self, op: str, plan: Plan, env: dict[str, str]) -> int:
        if not plan.steps:
            if plan.exit_code:
                await self._say(plan.message or f"{op}: nothing to run")
            elif plan.message:
                log.info("%s: %s", op, plan.message)
            return plan.exit_code
        for argv in plan.steps:
            code = await self._spawn(list(argv), env)
            if code != 0:
                return code
        return 0

    async def _spawn(self, argv: list[str], env: dict[str, str], *, interactive: bool = True) -> int:
        with self._task_log() as task_log:
            child = BatchChild(argv, env=env, cwd=Path(self.runner.work_dir), send=self.runner.send,
                               next_input=self.runner.next_user_input if interactive else None, task_log=task_log,
                               poll_interval=self.input_poll_interval)
            try:
                await child.start()
            except FileNotFoundError:
                await self._say(f"{argv[0]}: command not found")
                return 127
            except PermissionError:
                await self._say(f"{argv[0]}: permission denied")
                return 126
            except OSError as e:
                await self._say(f"{argv[0]}: cannot run: {e.strerror or e}")
                return 126
            self._children.add(child)
            assert child.pgid is not None
            self._pgids.add(child.pgid)
            try:
                return await child.wait()
            finally:
                self._children.discard(child)
                if not child.group_alive():
                    self._pgids.discard(child.pgid)

    async def _settle_children(self) -> None:
        for child in list(self._children):
            await child.settle()

    async def _say(self, text: str) -> None:
        await self.runner.send("stderr", text.rstrip("\n") + "\n")

    @contextlib.contextmanager
    def _task_log(self):  # type: ignore[no-untyped-def]
        """The per-kernel task log (PROTOCOL §1.7), opened for appending, or None."""
        handle: BinaryIO | None = None
        path = self._task_log_path()
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = open(path, "ab", buffering=0)
            except OSError as e:
                log.warning("cannot open the task log %s: %s", path, e)
        try:
            yield handle
        finally:
            if handle is not None:
                handle.close()

    def _task_log_path(self) -> Path | None:
        logs = Path(self.runner.work_dir) / ".logs"
        if not logs.is_dir():
            return None
        kernel_id = self.runner.child_env.get("BACKENDAI_KERNEL_ID") or os.environ.get("BACKENDAI_KERNEL_ID")
        if not kernel_id:
            log.debug("%s exists but BACKENDAI_KERNEL_ID is not set: no task log", logs)
            return None
        try:
            h = uuid.UUID(kernel_id).hex
        except ValueError:
            h = "".join(c for c in kernel_id if c.isalnum()) or "unknown"
        if len(h) < 5:
            h = h.rjust(5, "0")
        return logs / "task" / h[0:2] / h[2:4] / f"{h[4:]}.log"


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
