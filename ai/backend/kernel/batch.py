"""Batch mode: the `clean`/`build`/`exec` ops and bootstrap scripts (docs/batch.md).

`""` skips a step, `"*"` runs the language's heuristic (`build "*"` runs `make` first when there is
a Makefile), anything else is a shell command and runs through `/bin/sh -c` with the child
environment.

Finish frames (docs/protocol.md#batch-mode): the agent ends a run at `clean-finished` and
`build-finished` and drops what arrives before the client's next call, so a step that has the
next step of the same batch queued behind it sends no finish frame of its own; a failing build with
an `exec` behind it ends the batch with `finished {"exitCode": 127}` (the build's exit code is
stated on stderr) and the queued `exec` is then skipped silently. `legacy_frames` restores the
original sequence exactly (every step sends its frame, a failed build makes the next `exec` answer
`finished 127` at once, finish frames after a 10 ms pause).

What this module uses of the runner is what its constructor takes: the agent link (frames, user
input, the next queued op) and plain values (docs/architecture.md).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from traitlets import Bool, Float, Unicode
from traitlets.config import Configurable

from .agentlink import AgentLink
from .batch_io import BatchChild
from .languages import MAKEFILES, BatchContext, Language, Plan, ToolMissing
from .ops import FINISH_FRAME
from .options import from_env
from .procfacts import group_alive, signal_group
from .userinput import UserInputServer

log = logging.getLogger(__name__)

NEXT_STEP = {"clean": "build", "build": "exec"}


class BatchExecutor(Configurable):
    """Runs batch steps one at a time (the runner's serial queue calls `run`)."""

    kill_grace = Float(2.0, help="seconds between SIGINT and SIGKILL when interrupting a batch program").tag(config=True)
    followup_wait = Float(0.05, help="seconds a finished batch step waits for the agent's next step to arrive").tag(config=True)
    input_poll_interval = Float(0.1, help="seconds between checks whether a batch program blocks reading stdin").tag(config=True)
    user_input_socket = from_env(
        Unicode("/tmp/bai-user-input.sock", help="Unix socket for batch-mode user input").tag(config=True),
        "KRUNNER_USER_INPUT_SOCKET")
    legacy_frames = Bool(False, help="send clean-/build-finished for every batch step exactly as the original runner").tag(config=True)

    def __init__(self, link: AgentLink, *, language: Language, work_dir: Path, runtime_path: str,
                 child_env: Mapping[str, str], **config: Any) -> None:
        """`child_env` is the runner's finished child environment (read at each step, never changed)."""
        super().__init__(**config)
        self.link = link
        self.language, self.work_dir, self.runtime_path = language, Path(work_dir), runtime_path
        self.child_env = child_env
        self._children: set[BatchChild] = set()
        self._pgids: set[int] = set()  # every group we started, for shutdown
        self._build_failed = False  # legacy frames: the next exec answers 127 at once
        self._swallow_exec = False  # the batch already ended with `finished 127`
        self._inputs: UserInputServer | None = None
        self._escalations: set[asyncio.Task] = set()  # SIGKILL timers may outlive their step

    async def start(self) -> None:
        """Serve the user-input socket; a failure to bind is logged, never fatal."""
        self._inputs = UserInputServer(self.user_input_socket, self.link.send, self.link.next_user_input,
                                       before_prompt=self._settle_children)
        try:
            await self._inputs.start()
        except OSError as e:
            log.warning("cannot listen on the user-input socket %s: %s", self.user_input_socket, e)
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
            await self.link.send("finished", {"exitCode": 127})
            return
        try:
            code = await self._step(op, command)
        except Exception as e:
            log.exception("batch %s failed", op)
            await self._say(f"batch {op} failed inside the runner: {e}")
            code = -1
        if self.legacy_frames:
            if op == "build":
                self._build_failed = code != 0
            await asyncio.sleep(0.01)
            await self.link.send(FINISH_FRAME[op], {"exitCode": code})
            return
        if op in NEXT_STEP and await self._followed_by(NEXT_STEP[op]):
            if code == 0:
                return
            if op == "clean":  # the original goes on with the build after a failed clean
                await self._say(f"clean exited with code {code}; continuing with the build")
                return
            await self._say(f"build failed with exit code {code}; exec skipped")
            self._swallow_exec = True
            await self.link.send("finished", {"exitCode": 127})
            return
        if op == "build":
            self._build_failed = code != 0
        await self.link.send(FINISH_FRAME[op], {"exitCode": code})

    async def run_script(self, argv: list[str]) -> int:
        """Run e.g. bootstrap.sh: output frames, no finish frame; its exit code."""
        return await self._spawn(argv, dict(self.child_env), interactive=False)

    async def interrupt(self) -> bool:
        """SIGINT to every running batch child's process group and end batch input waits."""
        hit = False
        for child in list(self._children):
            escalation = child.interrupt(self.kill_grace)
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
        groups = [g for g in self._pgids if signal_group(g, signal.SIGTERM)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.5
        while groups and loop.time() < deadline:
            await asyncio.sleep(0.05)
            groups = [g for g in groups if group_alive(g)]
        for g in groups:
            signal_group(g, signal.SIGKILL)
        self._pgids.clear()

    # steps -------------------------------------------------------------------------------------

    async def _followed_by(self, op: str) -> bool:
        """Whether `op` is queued right behind the running step. The agent sends its three frames
        back to back, but the runner may still be reading them: give it `followup_wait`."""
        return await self.link.wait_next_queued_op(self.followup_wait) == op

    async def _step(self, op: str, command: str) -> int:
        if not command:
            log.debug("%s skipped (empty command)", op)
            return 0
        env = dict(self.child_env)
        env["KRUNNER_USER_INPUT_SOCKET"] = self.user_input_socket
        if op == "exec":
            env["_BACKEND_BATCH_MODE"] = "1"
        if command != "*":
            return await self._spawn(["/bin/sh", "-c", command], env)
        ctx = BatchContext(self.language.name, self.work_dir, self.runtime_path, env, self.language.install_hint)
        try:
            if op == "build" and ctx.exists(*MAKEFILES):
                plan = ctx.run(ctx.tool("make", hint="apt-get install make"))
            else:
                plan = getattr(self.language, op)(ctx)
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
            child = BatchChild(argv, env=env, cwd=self.work_dir, send=self.link.send,
                               next_input=self.link.next_user_input if interactive else None, task_log=task_log,
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
        await self.link.send("stderr", text.rstrip("\n") + "\n")

    @contextlib.contextmanager
    def _task_log(self):  # type: ignore[no-untyped-def]
        """The per-kernel task log (docs/batch.md#task-log), opened for appending, or None."""
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
        logs = self.work_dir / ".logs"
        if not logs.is_dir():
            return None
        kernel_id = self.child_env.get("BACKENDAI_KERNEL_ID") or os.environ.get("BACKENDAI_KERNEL_ID")
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

