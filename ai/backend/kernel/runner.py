"""The runner: agent sockets, receive loop, serial task queue, start-up and shutdown order.

Start-up (docs/protocol.md#start-up-and-shutdown; reordered so the agent's readiness probe never waits for a
kernel): `__main__` binds the sockets, the receive loop answers `status` at once; the language's
setup, the gateway and the main kernel start in the background, the task loop runs (`code` waits
for the kernel); batch and the services come once the kernel is ready, or when an op needs them:
the kernel's start-up gets the CPU. Every agent op is served as the table in `ops.py` says.

Only this module (and `__main__`) knows `Runner`. The subsystems get the agent link
(`agentlink.AgentLink`) and plain values, never the runner (docs/architecture.md).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq
import zmq.asyncio

from . import protocol
from .agentlink import SocketAgentLink
from .app import RunnerApp
from .environment import build_child_env, read_environ_txt
from .gateway.config import GatewayConfig
from .languages import Language, get_language
from .ops import FINISH_FRAME, OPS, Mode
from .procfacts import return_large_buffers_to_the_os, set_process_name
from .subsystems import (EARLY_OPS, KERNEL_OPS, bounded, guarded, import_batch_and_services,
                         make_batch_and_services, make_hub, subsystems_due)

if TYPE_CHECKING:
    from .batch import BatchExecutor
    from .bridge import QueryBridge
    from .kernels import KernelHub
    from .services.manager import ServiceManager


log = logging.getLogger(__name__)


class StartupError(Exception):
    """Something the user asked for cannot be served; the runner exits non-zero with this message."""


class Runner:
    """One runner process: serves the agent, owns the kernels, batch programs and services."""

    def __init__(self, app: RunnerApp, sockets: tuple[zmq.Context, zmq.Socket, zmq.Socket],
                 intrinsic_ports: dict[str, int]) -> None:  # sockets: the agent's, bound by __main__
        self.app = app
        self.lang = app.lang
        self.language: Language = get_language(self.lang)
        self.started_at = time.monotonic()
        self.work_dir = Path(app.work_dir)
        self.config_dir = Path(app.config_dir)
        if not self.work_dir.is_dir():
            raise SystemExit(f"work dir {self.work_dir} does not exist")
        if self.work_dir.stat().st_uid != os.getuid():
            log.warning("%s is not owned by the runner's uid %d", self.work_dir, os.getuid())
        environ = read_environ_txt(self.config_dir / "environ.txt")
        os.environ.update(environ)
        self.child_env: dict[str, str] = build_child_env(
            self.work_dir, {**self.language.child_env, **environ}, self.language.path_prepend
        )
        self.intrinsic_ports = intrinsic_ports
        self.runtime_path = self.language.resolve_runtime(app.runtime_path_arg)
        self.link = SocketAgentLink()
        self.gateway_config = GatewayConfig(parent=app)
        self.hub: KernelHub | None = None  # these three: made once the agent sockets are bound
        self.batch: BatchExecutor | None = None
        self.services: ServiceManager | None = None
        self._subsystems_ready = asyncio.Event()
        self._subsystems_wanted = asyncio.Event()  # an op needs batch or the services: build them now
        # op -> the method serving it (ipykernel's shell_handlers pattern); the table is ops.OPS
        self._handlers = {name: getattr(self, op.handler) for name, op in OPS.items()}
        self.gateway_url: str | None = None
        self._gateway: Any = None
        self._running_op: str | None = None
        self._complete_lock = asyncio.Lock()
        self._bridge: asyncio.Future[QueryBridge | None] | None = None
        self._launch: asyncio.Future[str] | None = None  # the main kernel's launch (jupyter_client)
        self._output: Any = None  # outputchannel.OutputChannel of the main kernel
        self._kernel_error = ""
        self._interrupted_early = False
        self._background: set[asyncio.Task[Any]] = set()
        self._ctx: zmq.Context = sockets[0]
        self._insock = zmq.asyncio.Socket.from_socket(sockets[1])
        self._outsock = zmq.asyncio.Socket.from_socket(sockets[2])
        self.link.attach(self._outsock)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(guarded(coro, name), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # ---- start-up --------------------------------------------------------------------------
    async def _type_options(self, *classes: str) -> None:
        """The command line's values for these subsystem classes' options, typed now (`app.py`)."""
        try:
            await asyncio.to_thread(self.app.type_subsystem_options, *classes)
        except (Exception, SystemExit) as e:  # traitlets reports a bad value, then exits
            raise StartupError(f"bad command-line option value: {e}") from e

    async def _start_batch_and_services(self) -> None:
        await self._type_options()
        self.batch, self.services = await make_batch_and_services(
            self.app, self.link, self.language, lang=self.lang, work_dir=self.work_dir, config_dir=self.config_dir,
            child_env=self.child_env, runtime_path=self.runtime_path, intrinsic_ports=self.intrinsic_ports,
            gateway_token=self.gateway_config.token)
        self._subsystems_ready.set()
        await self._run_step("batch input socket", self.batch.start())
        await self._run_step("services", self.services.start(gateway_url=self.gateway_url))
        log.info("batch and services are up")

    def _main_kernel_argv(self) -> asyncio.Future[list[str]] | None:
        """The language's argv for the main kernel, worked out in a thread from now on (Python may ask
        RUNTIME_PATH for ipykernel: one more interpreter start, overlapped); None: the kernelspec's."""
        name = self.app.kernel_name or self.language.kernelspec
        if not name or name != self.language.kernelspec or self.language.kernel_argv is None:
            return None
        return asyncio.ensure_future(asyncio.to_thread(self.language.kernel_argv, self.runtime_path,
                                                       dict(self.child_env)))

    async def _start_main_kernel(self, argv_future: asyncio.Future[list[str]] | None) -> QueryBridge | None:
        """Start the main kernel and its bridge (None when it cannot start: queries then say why)."""
        name = self.app.kernel_name or self.language.kernelspec
        if not name:
            self._kernel_error = f"no Jupyter kernelspec is configured for {self.lang}"
            return None
        try:
            if argv_future is not None:
                self.hub.kernel_spec_manager.argv_overrides = {name: await argv_future}
            from .outputchannel import OutputChannel
            from .provisioner import preloaded_for

            # the output of our queries comes this way (outputchannel.py); the bridge closes it
            self._output = output = OutputChannel.open(self.app.runtime_dir)
            env = {**self.child_env, **self.app.kernel_env, **(output.env if output is not None else {})}
            with preloaded_for(self.hub.kernel_spec_manager, name):
                # shielded: a shutdown meanwhile lets the launch finish, then stops that kernel (_shutdown)
                self._launch = asyncio.ensure_future(self.hub.start_kernel(name, env=env, cwd=str(self.work_dir)))
                kernel_id = await asyncio.shield(self._launch)
            self.spawn(import_batch_and_services(), "subsystem-imports")  # built once it is ready
            self.hub.main_kernel_id = kernel_id
            from .bridge import QueryBridge
            from .spillqueue import SpillQueue
            bridge = QueryBridge(self.link, self.hub, kernel_id, ready_timeout=self.app.kernel_start_timeout,
                                 complete_timeout=self.app.complete_timeout, iopub_queue=SpillQueue(parent=self.app),
                                 output=output)
            await bridge.start()
        except Exception as e:
            self._kernel_error = f"failed to start the {name!r} Jupyter kernel: {e}"
            log.exception("query mode is disabled: %s", self._kernel_error)
            return None
        log.info("main kernel %s (%s) is ready; connection file %s", kernel_id, name, self.hub.connection_file(kernel_id))
        return bridge

    async def _start_gateway(self) -> None:
        """A configured gateway that cannot listen stops the runner (StartupError): asked-for but
        missing is worse than not starting."""
        config = self.gateway_config
        if not config.port:
            return
        from .gateway.app import start_gateway

        try:
            self._gateway = await start_gateway(self.hub, config=config, base_env=self.child_env)
        except OSError as e:
            raise StartupError(f"the gateway cannot listen on {config.ip}:{config.port}: {e.strerror or e}") from e
        self.gateway_url = f"http://{config.ip}:{self._gateway.port}"
        log.info("gateway listening on %s", self.gateway_url)

    async def serve(self) -> None:
        """Run until SIGTERM/SIGINT, then shut down within `shutdown_timeout`."""
        set_process_name(b"krunner: " + self.lang.encode())
        return_large_buffers_to_the_os()
        os.chdir(self.work_dir)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, stop)
        receiver = asyncio.create_task(self._receive_loop(), name="receive-loop")
        worker: asyncio.Task[None] | None = None
        try:
            # overlapped: the kernel's argv, the language setup and the imports of the kernel's modules
            argv_future = self._main_kernel_argv()
            setup = asyncio.ensure_future(self._run_step(
                "language setup", self.language.run_setup(self.work_dir, self.runtime_path, self.child_env)))
            await self._type_options("KernelHub", "SpillQueue")
            self.hub = await make_hub(self.app, runtime_dir=self.app.runtime_dir, work_dir=self.work_dir,
                                      with_gateway=bool(self.gateway_config.port))
            await setup
            await self._start_gateway()  # before the kernel: a gateway that cannot listen ends the runner
            self._bridge = asyncio.ensure_future(self._start_main_kernel(argv_future))
            bootstrap = self.work_dir / "bootstrap.sh"
            if bootstrap.is_file():  # ahead of whatever the agent queued meanwhile
                self.link.enqueue_first(protocol.Request("bootstrap", str(bootstrap)))
            worker = asyncio.create_task(self._task_loop(), name="task-loop")
            if await subsystems_due(self._bridge, self._subsystems_wanted, stop, self.app.subsystems_wait):
                await self._start_batch_and_services()
            await stop.wait()
        finally:
            await self._shutdown(receiver, worker)

    async def _need_subsystems(self) -> None:
        self._subsystems_wanted.set()  # (subsystems_due)
        await self._subsystems_ready.wait()

    def _request_stop(self, stop: asyncio.Event) -> None:
        """The signal handler: the bridge stops reading kernel output at once, so that a flood of
        it does not hold up the shutdown that follows."""
        stop.set()
        if (bridge := self._started_bridge()) is not None:
            bridge.stop_reading()

    def _started_bridge(self) -> QueryBridge | None:
        done = self._bridge is not None and self._bridge.done() and not self._bridge.cancelled()
        return self._bridge.result() if done else None  # type: ignore[union-attr]

    async def _run_step(self, what: str, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except Exception:
            log.exception("%s failed (check the image configs/labels like `ai.backend.runtime-path`)", what)

    # ---- receiving -------------------------------------------------------------------------
    async def _receive_loop(self) -> None:
        while True:
            frames = await self._insock.recv_multipart(copy=True)
            try:
                request = protocol.decode_request(frames)
            except protocol.ProtocolError as e:
                log.warning("dropped a message: %s", e)
                continue
            try:
                await self._dispatch(request)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("failed to handle %s", request.op)

    async def _dispatch(self, request: protocol.Request) -> None:
        """Serve one op as its `ops.OPS` entry says."""
        op = OPS[request.op]
        if request.error:
            log.warning("bad request: %s", request.error)
        if request.op not in EARLY_OPS | KERNEL_OPS and op.mode is not Mode.QUEUED:
            await self._need_subsystems()
        if op.mode is Mode.QUEUED:
            self.link.enqueue(request)  # a bad one is answered in its turn (see _task_loop)
        elif request.error and op.on_bad_request is not None:
            await self.link.send(op.reply, op.on_bad_request(request.error))
        elif op.mode is Mode.TASK:
            self.spawn(self._handlers[request.op](request), request.op)
        else:
            await self._handlers[request.op](request)

    # ---- op handlers (named in ops.OPS) ------------------------------------------------------
    async def run_batch_step(self, request: protocol.Request) -> None:
        await self.batch.run(request.op, request.text)

    async def run_query(self, request: protocol.Request) -> None:
        await self._run_query(request.text)

    async def answer_status(self, request: protocol.Request) -> None:
        await self.link.send("status", protocol.encode_status(self.started_at))

    async def take_input(self, request: protocol.Request) -> None:
        self.link.put_user_input(request.text)

    async def complete(self, request: protocol.Request) -> None:
        await self._complete(request.text)

    async def interrupt(self, request: protocol.Request) -> None:
        await self._interrupt()

    async def log_event(self, request: protocol.Request) -> None:
        protocol.log_agent_event(request.text)

    async def get_apps(self, request: protocol.Request) -> None:
        await self.services.op_get_apps(request.text)

    async def start_service(self, request: protocol.Request) -> None:
        await self.services.op_start_service(request.text)

    async def shutdown_service(self, request: protocol.Request) -> None:
        await self.services.op_shutdown_service(request.text)

    async def start_model_service(self, request: protocol.Request) -> None:
        await self.services.op_start_model_service(request.text)

    async def _complete(self, text: str) -> None:
        """Always answer, in request order: real matches, or [] on bad input, failure or timeout."""
        async with self._complete_lock:
            suggestions: list[str] = []
            try:
                payload = protocol.parse_json_object(text, "complete")
                bridge = None
                if self._bridge is not None:
                    bridge = await asyncio.wait_for(asyncio.shield(self._bridge), self.app.complete_timeout)
                if bridge is not None:
                    suggestions = await bridge.complete(payload)
            except protocol.ProtocolError as e:
                log.warning("%s", e)
            except TimeoutError:
                log.info("completion timed out")
            except Exception:
                log.exception("completion failed")
            await self.link.send("completion", {"suggestions": suggestions})

    async def _interrupt(self) -> None:
        if await self.batch.interrupt():
            return
        bridge = self._started_bridge()
        if bridge is not None:
            await bridge.interrupt()
        elif self._running_op == "code":
            self._interrupted_early = True  # the query still waits for the kernel: cancel it

    # ---- the serial task queue -------------------------------------------------------------
    async def _task_loop(self) -> None:
        while True:
            request = await self.link.next_task()
            self._running_op = request.op
            try:
                if request.op not in KERNEL_OPS:  # batch steps and bootstrap.sh
                    await self._need_subsystems()
                if request.op == "bootstrap":  # queued by the runner itself, not an agent op
                    code = await self.batch.run_script(["/bin/sh", request.text])
                    log.info("bootstrap.sh exited with %d", code)
                elif request.error:
                    await self.link.send("stderr", f"krunner: {request.error}\n")
                    await self.link.send(FINISH_FRAME[request.op], OPS[request.op].on_bad_request(request.error))
                else:
                    await self._handlers[request.op](request)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s task failed", request.op)
                if request.op in FINISH_FRAME:
                    await self.link.send("stderr", f"krunner: internal error while running {request.op}; see the runner log\n")
                    await self.link.send(FINISH_FRAME[request.op], {"exitCode": -1})
            finally:
                self._running_op = None

    async def _run_query(self, code: str) -> None:
        assert self._bridge is not None
        self._interrupted_early = False
        bridge = await self._bridge
        if self._interrupted_early:
            await self.link.send("stderr", "KeyboardInterrupt: interrupted before the kernel was ready\n")
            await self.link.send("finished", {"exitCode": 1})
            return
        if bridge is None:
            await self.link.send("stderr", f"query mode is not available: {self._kernel_error}\n")
            await self.link.send("finished", {"exitCode": 127})
            return
        try:
            exit_code = await bridge.execute(code)
        except TimeoutError as e:
            await self.link.send("stderr", f"query mode is not available: {e}\n")
            exit_code = 127
        await self.link.send("finished", {"exitCode": exit_code})

    # ---- shutdown --------------------------------------------------------------------------
    async def _shutdown(self, receiver: asyncio.Task[Any], worker: asyncio.Task[Any] | None) -> None:
        log.info("shutting down")
        budget = self.app.shutdown_timeout
        self._insock.close(linger=0)
        tasks = [t for t in (receiver, worker, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if (bridge := self._started_bridge()) is not None:  # first: a flood of output must not slow the rest
            await bounded(bridge.close(), 0.5, "bridge")
        elif self._bridge is not None:
            self._bridge.cancel()
            if self._launch is not None:  # a process launched but not yet the hub's would outlive us
                await bounded(asyncio.shield(self._launch), budget * 0.3, "the main kernel's launch")
        steps: list[Coroutine[Any, Any, Any]] = [s.shutdown() for s in (self.services, self.batch) if s is not None]
        if self._gateway is not None:
            steps.append(self._gateway.close())
        await bounded(asyncio.gather(*steps, return_exceptions=True), budget * 0.6, "services/batch")
        if self.hub is not None:
            await bounded(self.hub.shutdown_all(now=True), budget * 0.3, "kernels")
        if self._output is not None:  # (the bridge's close did it, unless the bridge never started)
            self._output.close()
        self._close_sockets()
        log.info("bye")

    def _close_sockets(self) -> None:
        self._outsock.close(linger=int(self.app.send_timeout * 1000))
        self._ctx.destroy(linger=0)
