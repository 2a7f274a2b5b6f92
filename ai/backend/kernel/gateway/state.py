"""What every handler shares: the hub, the config, kernel activity, websocket sessions.

Lives in the tornado application's settings (`settings["gateway"]`); hub events (restart, death,
shutdown) are turned into iopub `status` messages and closed websockets here.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping

import zmq.asyncio
from tornado import web

from .activity import KernelActivity
from .channels import ChannelSession
from .config import TOKEN_ENV, GatewayConfig
from .sessions import SessionStore
from . import zmqutil

log = logging.getLogger(__name__)

BaseEnv = Mapping[str, str] | Callable[[], Mapping[str, str]] | None


class GatewayState:
    """Shared state of one gateway server."""

    def __init__(self, hub, config: GatewayConfig, base_env: BaseEnv = None) -> None:
        self.hub = hub
        self.config = config
        self.base_env = base_env
        self.ctx = zmq.asyncio.Context()
        self.activity: dict[str, KernelActivity] = {}
        self.channel_sessions: dict[tuple[str, str], ChannelSession] = {}
        self.websockets: dict[str, set] = {}  # kernel_id -> open channel handlers
        self.sessions = SessionStore()
        self.pending_starts = 0
        self.closed = False
        self._tasks: set[asyncio.Task] = set()
        hub.add_listener(self._on_kernel_event)
        self._culler: asyncio.Task | None = None
        if config.cull_idle_timeout > 0:
            self._culler = asyncio.get_running_loop().create_task(self._cull_loop(), name="gateway-culler")

    # -- kernels -----------------------------------------------------------------------------

    def kernel_manager(self, kernel_id: str):
        """The kernel's manager, or a JSON 404."""
        try:
            return self.hub.get_kernel(kernel_id)
        except KeyError:
            raise web.HTTPError(404, f"Kernel does not exist: {kernel_id}") from None

    def watch(self, kernel_id: str) -> KernelActivity:
        act = self.activity.get(kernel_id)
        if act is None:
            act = self.activity[kernel_id] = KernelActivity(self.ctx, self.hub.get_kernel(kernel_id), kernel_id)
        return act

    def kernel_model(self, kernel_id: str) -> dict:
        self.kernel_manager(kernel_id)
        model = dict(self.hub.kernel_model(kernel_id))
        act = self.watch(kernel_id)
        if act.execution_state is not None:
            model["execution_state"] = act.execution_state
        model["last_activity"] = act.last_activity
        model["connections"] = len(self.websockets.get(kernel_id, ()))
        return model

    def client_kernel_ids(self) -> list[str]:
        """Kernels that clients started: every kernel of the hub but the runner's main kernel
        (what `max_kernels` bounds; see docs/conformance.md)."""
        main = self.hub.main_kernel_id
        return [kid for kid in self.hub.kernel_ids() if kid != main]

    def listed_kernel_ids(self) -> list[str]:
        """What GET /api/kernels lists: the main kernel only when `config.list_main_kernel`."""
        return list(self.hub.kernel_ids()) if self.config.list_main_kernel else self.client_kernel_ids()

    def kernel_models(self) -> list[dict]:
        models = []
        for kid in self.listed_kernel_ids():
            try:
                models.append(self.kernel_model(kid))
            except (KeyError, web.HTTPError):
                continue  # shut down while listing
        return models

    def is_busy(self, kernel_id: str) -> bool:
        act = self.activity.get(kernel_id)
        return act is not None and act.execution_state == "busy"

    def kernel_env(self, client_env: dict[str, str] | None) -> dict[str, str]:
        """Base environment (never trimmed: HOME, TMPDIR, PATH stay) + KERNEL_* + allow-listed
        client variables; the gateway token (ours or KG_AUTH_TOKEN) is never passed on."""
        base = self.base_env() if callable(self.base_env) else self.base_env
        env = dict(os.environ if base is None else base)
        allow = set(self.config.env_allowlist)
        for name, value in (client_env or {}).items():
            if name.startswith("KERNEL_") or name in allow or "*" in allow:
                env[name] = value
        env.pop(TOKEN_ENV, None)
        env.pop("KG_AUTH_TOKEN", None)  # Kernel Gateway's name for the same secret
        env["KERNEL_GATEWAY"] = "1"
        return env

    def default_kernel_name(self) -> str:
        if self.config.default_kernel_name:
            return self.config.default_kernel_name
        main = self.hub.main_kernel_id
        if main is not None:
            try:
                return self.hub.get_kernel(main).kernel_name
            except KeyError:
                pass
        specs = self.hub.spec_manager.find_kernel_specs()
        if "python3" in specs or not specs:
            return "python3"
        return sorted(specs)[0]

    # -- websocket sessions ------------------------------------------------------------------

    def channel_session(self, kernel_id: str, session_id: str) -> tuple[ChannelSession, bool]:
        """The (kernel, session_id) ZMQ session, created on first use; (session, reused)."""
        key = (kernel_id, session_id)
        cs = self.channel_sessions.get(key)
        if cs is not None and not cs.closed:
            return cs, True
        cs = ChannelSession(
            self.ctx, self.kernel_manager(kernel_id), kernel_id, session_id,
            buffer_size=self.config.replay_buffer_messages, is_busy=lambda: self.is_busy(kernel_id),
        )
        self.channel_sessions[key] = cs
        return cs, False

    def expire(self, cs: ChannelSession) -> None:
        if self.channel_sessions.get((cs.kernel_id, cs.session_id)) is cs:
            del self.channel_sessions[(cs.kernel_id, cs.session_id)]
        if cs.buffer:
            log.info("discarding %d buffered messages of %s:%s", len(cs.buffer), cs.kernel_id, cs.session_id)
        self.spawn(cs.close())

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _broadcast_status(self, kernel_id: str, state: str) -> None:
        """A synthetic iopub `status` (restarting/dead) to every session of the kernel."""
        _, parts = zmqutil.request_parts("status", {"execution_state": state})
        for (kid, _sid), cs in list(self.channel_sessions.items()):
            if kid == kernel_id:
                if cs.sink is None or not cs.sink.deliver("iopub", parts):
                    cs.buffer.append(("iopub", parts))

    def _on_kernel_event(self, event: str, kernel_id: str) -> None:
        if self.closed:
            return
        log.debug("kernel %s: %s", kernel_id, event)
        act = self.activity.get(kernel_id)
        if event == "died":
            self._broadcast_status(kernel_id, "restarting")
            if act:
                act.reset("restarting")
        elif event == "dead":
            self._broadcast_status(kernel_id, "dead")
            if act:
                act.reset("dead")
        elif event == "restarted" and act:
            act.reset("starting")
        elif event == "shutdown":
            self.spawn(self.forget_kernel(kernel_id))

    async def forget_kernel(self, kernel_id: str) -> None:
        """A kernel is gone: close its websockets, ZMQ sessions, monitor and REST sessions."""
        for handler in list(self.websockets.pop(kernel_id, ())):
            handler.kernel_gone()
        for key in [k for k in self.channel_sessions if k[0] == kernel_id]:
            cs = self.channel_sessions.pop(key, None)
            if cs is not None:
                await cs.close()
        act = self.activity.pop(kernel_id, None)
        if act is not None:
            await act.close()
        self.sessions.drop_kernel(kernel_id)

    async def _cull_loop(self) -> None:
        """Shut down kernels nobody uses (Kernel Gateway's MappingKernelManager culling rules)."""
        cfg = self.config
        while True:
            await asyncio.sleep(max(cfg.cull_interval, 0.1))
            now = time.monotonic()
            for kid in list(self.hub.kernel_ids()):
                if kid == self.hub.main_kernel_id:
                    continue
                act = self.watch(kid)
                idle_for = now - act.last_activity_ts
                connected = bool(self.websockets.get(kid))
                busy = act.execution_state == "busy"
                if idle_for < cfg.cull_idle_timeout or (connected and not cfg.cull_connected) or (busy and not cfg.cull_busy):
                    continue
                log.info("culling kernel %s: idle for %.0f s, %d connections", kid, idle_for,
                         len(self.websockets.get(kid, ())))
                try:
                    await self.hub.shutdown_kernel(kid)
                except Exception:
                    log.exception("culling kernel %s failed", kid)
                await self.forget_kernel(kid)

    async def close(self) -> None:
        self.closed = True
        if self._culler is not None:
            self._culler.cancel()
            await asyncio.gather(self._culler, return_exceptions=True)
        for handlers in list(self.websockets.values()):
            for handler in list(handlers):
                handler.kernel_gone(reason="gateway shutting down")
        self.websockets.clear()
        await asyncio.gather(*(cs.close() for cs in self.channel_sessions.values()), return_exceptions=True)
        self.channel_sessions.clear()
        await asyncio.gather(*(a.close() for a in self.activity.values()), return_exceptions=True)
        self.activity.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.ctx.destroy(linger=0)

