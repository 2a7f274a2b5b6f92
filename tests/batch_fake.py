"""The agent side of BatchExecutor for in-process tests: `FakeAgent` implements the real
`AgentLink` interface (frames are collected, the serial queue is a list, inputs come from a queue)
and builds the executor from plain values as the runner does; the subprocesses and sockets are real."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ai.backend.kernel.agentlink import AgentLink
from ai.backend.kernel.batch import BatchExecutor
from ai.backend.kernel.environment import build_child_env
from ai.backend.kernel.languages import BatchContext, get_language


class FakeAgent(AgentLink):
    def __init__(self, work_dir: Path, lang: str = "python", *, runtime: str | None = None,
                 legacy: bool = False, grace: float = 1.0, env: dict[str, str] | None = None) -> None:
        self.lang = lang
        self.language = get_language(lang)
        self.work_dir = work_dir
        self.runtime_path = runtime or self.language.default_runtime
        self._sockdir = tempfile.mkdtemp(prefix="bi-")  # AF_UNIX paths must stay short
        self.options = dict(user_input_socket=os.path.join(self._sockdir, "in.sock"), legacy_frames=legacy,
                            kill_grace=grace, followup_wait=0.02, input_poll_interval=0.05)
        self.child_env = build_child_env(work_dir, {**self.language.child_env, **(env or {})},
                                         self.language.path_prepend)
        self.frames: list[tuple[str, bytes]] = []
        self.queued: list[str] = []
        self.inputs: asyncio.Queue[str] = asyncio.Queue()
        self.frame_added = asyncio.Event()
        self.batch: BatchExecutor | None = None

    # the AgentLink interface ---------------------------------------------------------------------

    async def send(self, msg_type: str, payload: Any = b"") -> None:
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        if isinstance(payload, str):
            payload = payload.encode()
        self.frames.append((msg_type, bytes(payload)))
        self.frame_added.set()

    async def wait_next_queued_op(self, timeout: float) -> str | None:
        return self.queued[0] if self.queued else None  # the list is filled before each step runs

    async def next_user_input(self) -> str:
        return await self.inputs.get()

    # helpers for tests ---------------------------------------------------------------------------
    async def start(self) -> FakeAgent:
        """What the runner does at start-up: the language's setup, then the executor."""
        if self.language.setup is not None:
            ctx = BatchContext(self.language.name, self.work_dir, self.runtime_path, self.child_env)
            self.child_env.update(await self.language.setup(ctx))
        self.batch = BatchExecutor(self, language=self.language, work_dir=self.work_dir,
                                   runtime_path=self.runtime_path, child_env=self.child_env, **self.options)
        await self.batch.start()
        return self

    async def close(self) -> None:
        if self.batch is not None:
            await self.batch.shutdown()
        shutil.rmtree(self._sockdir, ignore_errors=True)

    async def batch_run(self, clean: str = "", build: str = "", exec: str = "") -> None:
        """The three queued tasks of one agent batch request, run as the runner's queue does."""
        steps = [("clean", clean), ("build", build), ("exec", exec)]
        self.queued = [op for op, _ in steps]
        for op, command in steps:
            self.queued.pop(0)
            await self.batch.run(op, command)

    async def wait_frame(self, msg_type: str, count: int = 1, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while sum(1 for t, _ in self.frames if t == msg_type) < count:
                self.frame_added.clear()
                await self.frame_added.wait()

    def text(self, stream: str = "stdout") -> str:
        return b"".join(p for t, p in self.frames if t == stream).decode(errors="replace")

    def controls(self) -> list[tuple[str, Any]]:
        """The non-output frames, payloads decoded."""
        return [(t, json.loads(p) if p else None) for t, p in self.frames if t not in ("stdout", "stderr")]
