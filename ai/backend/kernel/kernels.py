"""KernelHub: every kernel the runner hosts, the main one and those started by gateway clients.

A thin, named use of jupyter_client: `AsyncMultiKernelManager` for lifecycles (with its
`KernelRestarter`), a `KernelSpecManager` that also sees the kernelspecs bundled with this package,
and connection files in the Jupyter runtime dir so any front-end can attach with `--existing`.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from queue import Empty
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.session import Session
from jupyter_client.ioloop import AsyncIOLoopKernelManager, AsyncIOLoopKernelRestarter
from jupyter_client.multikernelmanager import AsyncMultiKernelManager
from jupyter_core.paths import jupyter_path
from traitlets import Dict, Float, List, Type, Unicode, default, observe

log = logging.getLogger(__name__)

KernelListener = Callable[[str, str], None]  # (event, kernel_id); event: started/restarted/died/shutdown


def bundled_kernelspec_dirs() -> list[str]:
    """Kernelspecs shipped with the runner: the source tree's `kernelspecs/` and the installed
    `share/jupyter/kernels` of this interpreter (found without any `jupyter kernelspec install`)."""
    candidates = [
        Path(__file__).resolve().parents[3] / "kernelspecs",
        Path(sys.prefix) / "share" / "jupyter" / "kernels",
    ]
    return [str(p) for p in candidates if p.is_dir()]


class RunnerKernelSpecManager(KernelSpecManager):
    """Bundled specs first, then the usual Jupyter paths; exact names only.

    `argv_overrides` replaces a spec's argv at start-up: the runner uses it to run the Python
    kernel under the agent's RUNTIME_PATH instead of whatever interpreter launched us.
    `provisioner_overrides` names the provisioner of the main kernel's spec (provisioner.py).
    """

    argv_overrides = Dict(
        key_trait=Unicode(), value_trait=List(Unicode()), config=True,
        help="kernelspec name -> argv to use instead of the spec's own",
    )

    provisioner_overrides = Dict(
        key_trait=Unicode(), value_trait=Unicode(),
        help="kernelspec name -> jupyter_client kernel provisioner to launch it with",
    )

    @default("kernel_dirs")
    def _default_kernel_dirs(self) -> list[str]:
        dirs = bundled_kernelspec_dirs()
        return dirs + [d for d in jupyter_path("kernels") if d not in dirs]

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        spec = super().get_kernel_spec(kernel_name)
        argv = self.argv_overrides.get(kernel_name)
        if argv:
            spec.argv = list(argv)
        provisioner = self.provisioner_overrides.get(kernel_name)
        if provisioner:
            spec.metadata = {**spec.metadata, "kernel_provisioner": {"provisioner_name": provisioner}}
        return spec


async def _kernel_info(client: Any, timeout: float, km: Any) -> None:
    """Send kernel_info and wait for its reply; RuntimeError if the kernel dies meanwhile."""
    msg_id = client.kernel_info()
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError(f"no kernel_info_reply within {timeout:.0f} s")
        try:
            reply = await client.get_shell_msg(timeout=min(remaining, 1.0))
        except Empty:
            if not await km.is_alive():
                raise RuntimeError("the kernel died before answering") from None
            continue
        if reply["parent_header"].get("msg_id") == msg_id:
            return


class ConfirmingRestarter(AsyncIOLoopKernelRestarter):
    """jupyter_client's restarter, but a restart that *worked* resets its count.

    jupyter_client counts a restart as successful only once the kernel stayed alive for
    `stable_start_time` (10 s): a kernel killed every few seconds (a crashing extension, an
    `os._exit` in a loop) used up `restart_limit` and was then left dead for good. Here the count
    goes back to zero as soon as the restarted kernel answers `kernel_info`, so only a kernel that
    cannot start at all reaches the limit (docs/security.md#faults-nothing-is-lost-silently).
    """

    confirm_timeout = Float(30.0, config=True, help="seconds a restarted kernel has to answer kernel_info")
    _confirming: asyncio.Task | None = None

    async def poll(self) -> None:  # type: ignore[override]
        count, restarting = self._restart_count, self._restarting
        await super().poll()
        if self._restarting and (self._restart_count != count or not restarting):
            if self._confirming is not None:
                self._confirming.cancel()
            self._confirming = asyncio.get_running_loop().create_task(self._confirm_start())

    async def _confirm_start(self) -> None:
        """kernel_info on a shell channel of our own: own Session (a shared one would reject
        messages other clients already saw as replays), no iopub (never steal anyone's)."""
        km = self.kernel_manager
        client = km.client(session=Session(key=km.session.key, signature_scheme=km.session.signature_scheme))
        client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        try:
            await _kernel_info(client, self.confirm_timeout, km)
        except Exception as exc:  # noqa: BLE001 - died again, never answered, channels failed: the count stays
            self.log.info("restarted kernel did not answer kernel_info (%s); restart %d/%d",
                          exc, self._restart_count, self.restart_limit)
            return
        finally:
            client.stop_channels()
        self.log.debug("restarted kernel answered; restart count reset")
        self._restarting = False
        self._restart_count = 0

    def stop(self) -> None:
        super().stop()
        if self._confirming is not None:
            self._confirming.cancel()
            self._confirming = None


DEFAULT_RECONNECT_INTERVAL = 0.01  # seconds
STDIN_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED


class _MonitoringContext(zmq.asyncio.Context):
    """Attaches a monitor to the next socket it makes, before that socket can connect."""

    monitor_next: int = 0  # the events to watch on the next socket (0: none)
    last_monitor: zmq.asyncio.Socket | None = None

    def socket(self, socket_type: int, **kwargs: Any) -> Any:
        sock = super().socket(socket_type, **kwargs)
        events, self.monitor_next = self.monitor_next, 0  # the monitor is a socket of this context too
        if events:
            self.last_monitor = sock.get_monitor_socket(events)
        return sock


class QuickConnectClient(AsyncKernelClient):
    """jupyter_client's async client, whose sockets retry a refused connection every
    `KernelHub.client_reconnect_interval` instead of libzmq's 100–200 ms.

    A client connects while its kernel is still importing, before the kernel's ports exist: with
    libzmq's interval it reached the kernel up to 0.2 s after the kernel could answer, and an iopub
    message published meanwhile was lost (docs/performance.md#cold-paths-runner-start-up-and-first-query).
    Its stdin socket is watched from before its first connection (`stdin_monitor`, for the bridge).
    """

    stdin_monitor: zmq.asyncio.Socket | None = None

    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True  # the client's own, as jupyter_client's: stop_channels() destroys it
        context = _MonitoringContext()
        hub = getattr(self.parent, "parent", None)
        interval = getattr(hub, "client_reconnect_interval", DEFAULT_RECONNECT_INTERVAL)
        context.setsockopt(zmq.RECONNECT_IVL, max(1, round(interval * 1000)))
        return context

    def connect_stdin(self, identity: bytes | None = None) -> zmq.Socket:
        """The stdin socket with its handshake monitor attached first: a monitor attached after the
        connect misses a handshake that came sooner, as it does with a kernel that already
        listens (a preloaded one binds a few ms after its launch returns); the bridge then waited
        2 s for an event that had passed."""
        context = self.context
        if not isinstance(context, _MonitoringContext):
            return super().connect_stdin(identity)
        context.monitor_next = STDIN_EVENTS
        try:
            sock = super().connect_stdin(identity)
        finally:
            context.monitor_next = 0
        self.stdin_monitor, context.last_monitor = context.last_monitor, None
        return sock


class ExactNameKernelManager(AsyncIOLoopKernelManager):
    """jupyter_client silently turns the name `python` into `python3`; we map names exactly."""

    restarter_class = Type(
        default_value=ConfirmingRestarter, klass=AsyncIOLoopKernelRestarter, config=True,
        help="the restarter: resets its restart count once a restarted kernel answers",
    )

    @default("client_factory")
    def _quick_client_factory(self) -> type:
        return QuickConnectClient

    @observe("kernel_name")
    def _kernel_name_changed(self, change: dict[str, Any]) -> None:
        self._kernel_spec = None


class KernelHub(AsyncMultiKernelManager):
    """The runner's kernels. Connection files go to `connection_dir` (the Jupyter runtime dir)."""

    restart_poll_interval = Float(
        0.5, config=True,
        help="seconds between liveness checks of each kernel (the restarter's time_to_dead): "
        "a dead kernel is noticed within this time",
    )
    default_cwd = Unicode("", config=True, help="working directory of started kernels")
    client_reconnect_interval = Float(
        DEFAULT_RECONNECT_INTERVAL, config=True,
        help="seconds between a client's attempts to reach a kernel whose ports are not up yet "
        "(the runner's own clients; libzmq's default is 0.1 s plus up to 0.1 s)",
    )
    revive_delays = List(
        Float(), [1.0, 5.0, 15.0, 30.0, 60.0], config=True,
        help="seconds before each attempt to start again a kernel the restarter gave up on "
        "(the last value repeats): the runner is never left without its kernel",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.main_kernel_id: str | None = None
        self._listeners: list[KernelListener] = []
        self._started_at: dict[str, str] = {}
        self._revivals: dict[str, asyncio.Task] = {}

    @default("kernel_manager_class")
    def _default_km_class(self) -> str:
        return f"{ExactNameKernelManager.__module__}.{ExactNameKernelManager.__qualname__}"

    @default("kernel_spec_manager")
    def _default_ksm(self) -> KernelSpecManager:
        return RunnerKernelSpecManager(parent=self)

    @property
    def spec_manager(self) -> KernelSpecManager:
        return self.kernel_spec_manager

    def add_listener(self, callback: KernelListener) -> None:
        self._listeners.append(callback)

    def _notify(self, event: str, kernel_id: str) -> None:
        for callback in list(self._listeners):
            try:
                callback(event, kernel_id)
            except Exception:
                log.exception("kernel listener failed on %s %s", event, kernel_id)

    async def start_kernel(  # type: ignore[override]
        self,
        kernel_name: str | None = None,
        *,
        env: dict[str, str] | None = None,
        kernel_id: str | None = None,
        cwd: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Start a kernel by exact kernelspec name; returns its id once the process is up."""
        if env is not None:
            kwargs["env"] = env
        if kernel_id is not None:
            kwargs["kernel_id"] = kernel_id
        kwargs["cwd"] = cwd or self.default_cwd or os.getcwd()
        kid = await super().start_kernel(kernel_name=kernel_name, **kwargs)
        km = self.get_kernel(kid)
        restarter = getattr(km, "_restarter", None)
        if restarter is not None:
            restarter.time_to_dead = self.restart_poll_interval
            # Keep the ports on an automatic restart (jupyter_client picks new ones when a kernel
            # dies within its first seconds): the connection file, the bridge's client and open
            # gateway websockets then all stay valid.
            restarter.random_ports_until_alive = False
            restarter.stop()
            restarter.start()  # re-arm with the new interval
        km.add_restart_callback(lambda: self._notify("died", kid), "restart")
        km.add_restart_callback(lambda: self._gave_up(kid), "dead")
        self._started_at[kid] = _utcnow()
        log.info("started kernel %s (%s)", kid, km.kernel_name)
        self._notify("started", kid)
        return kid

    def _gave_up(self, kernel_id: str) -> None:
        """The restarter reached its limit: say so, then keep trying to start the kernel again."""
        self._notify("dead", kernel_id)
        if kernel_id not in self._revivals:
            self._revivals[kernel_id] = asyncio.get_running_loop().create_task(
                self._revive(kernel_id), name=f"revive-{kernel_id}")

    async def _revive(self, kernel_id: str) -> None:
        try:
            for attempt in range(1, 1 << 30):
                delay = self.revive_delays[min(attempt, len(self.revive_delays)) - 1] if self.revive_delays else 5.0
                log.error("kernel %s kept dying; starting it again in %.0f s (attempt %d)", kernel_id, delay, attempt)
                await asyncio.sleep(delay)
                if kernel_id not in self:
                    return  # shut down meanwhile
                try:
                    await self.restart_kernel(kernel_id, now=True)
                    await self.wait_ready(kernel_id, timeout=60.0)
                except Exception as exc:  # noqa: BLE001 - any failure is retried after the next delay
                    log.error("starting kernel %s again failed: %s: %s", kernel_id, type(exc).__name__, exc)
                    continue
                log.warning("kernel %s is back after the restarter gave up", kernel_id)
                return
        finally:
            self._revivals.pop(kernel_id, None)

    async def wait_ready(self, kernel_id: str, timeout: float = 60.0) -> None:
        """Block until the kernel answers `kernel_info` (a throwaway shell-only client with its own
        Session, closed afterwards: other clients of the kernel are not disturbed)."""
        km = self.get_kernel(kernel_id)
        client = km.client(session=Session(key=km.session.key, signature_scheme=km.session.signature_scheme))
        client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        try:
            await _kernel_info(client, timeout, km)
        finally:
            client.stop_channels()

    def kernel_ids(self) -> list[str]:
        return self.list_kernel_ids()

    def connection_file(self, kernel_id: str) -> str:
        return self.get_kernel(kernel_id).connection_file

    def kernel_model(self, kernel_id: str) -> dict[str, Any]:
        """The Jupyter REST model of a kernel (activity fields are filled in by the gateway)."""
        km = self.get_kernel(kernel_id)
        return {
            "id": kernel_id,
            "name": km.kernel_name,
            "last_activity": self._started_at.get(kernel_id, _utcnow()),
            "execution_state": "starting" if not km.ready.done() else "idle",
            "connections": 0,
        }

    async def restart_kernel(self, kernel_id: str, now: bool = False) -> None:  # type: ignore[override]
        await super().restart_kernel(kernel_id, now=now)
        self._notify("restarted", kernel_id)

    async def shutdown_kernel(  # type: ignore[override]
        self, kernel_id: str, now: bool = False, restart: bool = False
    ) -> None:
        revival = self._revivals.pop(kernel_id, None)
        if revival is not None and revival is not asyncio.current_task():
            revival.cancel()
        await super().shutdown_kernel(kernel_id, now=now, restart=restart)
        self._started_at.pop(kernel_id, None)
        if kernel_id == self.main_kernel_id:
            self.main_kernel_id = None
        self._notify("shutdown", kernel_id)

    async def shutdown_all(self, now: bool = False) -> None:  # type: ignore[override]
        ids = self.list_kernel_ids()
        for revival in self._revivals.values():
            revival.cancel()
        self._revivals.clear()
        await super().shutdown_all(now=now)
        for kid in ids:
            self._started_at.pop(kid, None)
            self._notify("shutdown", kid)
        self.main_kernel_id = None


def _utcnow() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
