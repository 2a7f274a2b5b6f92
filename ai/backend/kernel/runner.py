"""The runner: agent sockets, receive loop, serial task queue, start-up and shutdown order.

Start-up (PROTOCOL.md §1.5, reordered so the agent's readiness probe never waits for a kernel):
bind the sockets and answer `status` at once; start the main kernel, the batch input socket and
the services in the background; queued `code` tasks wait for the kernel instead.
"""
from __future__ import annotations

import asyncio
import collections
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from jupyter_core.utils import ensure_dir_exists

from . import protocol
from .app import RunnerApp, RunnerLogFormatter
from .batch import BatchExecutor
from .bridge import QueryBridge
from .environment import build_child_env, read_environ_txt, read_intrinsic_ports
from .kernels import KernelHub
from .languages import Language, get_language
from .services import ServiceManager

log = logging.getLogger(__name__)


def configure_logging(app: RunnerApp) -> None:
    """Log to stderr (the container log) with the original's `<lang>-kernel: +secs [LEVEL]` prefix."""
    try:
        prefix = get_language(app.lang).prefix
    except KeyError:
        prefix = "krunner"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RunnerLogFormatter(prefix))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if app.debug else logging.INFO)
    for noisy in ("traitlets", "asyncio", "tornado.access"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if app.debug else logging.WARNING)
    app.log = logging.getLogger("krunner")


def _return_large_buffers_to_the_os() -> None:
    """Serve big agent payloads from mmap so they go back to the OS when freed.

    glibc raises its mmap threshold after the first large free, after which multi-MiB frames come
    from the heap and fragment it: RSS then creeps up under a flood of huge messages. A fixed
    threshold keeps the runner's memory flat (no-op where mallopt does not exist, e.g. musl).
    """
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 256 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _set_process_name(name: bytes) -> None:
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(15, ctypes.c_char_p(name[:15]), 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


class Runner:
    """One runner process: serves the agent, owns the kernels, batch programs and services."""

    def __init__(self, app: RunnerApp) -> None:
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
        self.intrinsic_ports = read_intrinsic_ports(self.config_dir / "intrinsic-ports.json")
        self.runtime_path = self._resolve_runtime(app.runtime_path_arg)
        ensure_dir_exists(app.runtime_dir, 0o700)  # connection files go there; a fresh HOME lacks it
        self.hub = KernelHub(parent=app, connection_dir=app.runtime_dir, default_cwd=str(self.work_dir))
        self.batch = BatchExecutor(self)
        self.services = ServiceManager(self)
        self.gateway_url: str | None = None
        self._gateway: Any = None
        self._queue: collections.deque[protocol.Request] = collections.deque()
        self._queue_changed = asyncio.Event()
        self._running_op: str | None = None
        self._user_inputs: asyncio.Queue[str] = asyncio.Queue()
        self._complete_lock = asyncio.Lock()
        self._bridge: asyncio.Future[QueryBridge | None] | None = None
        self._kernel_error = ""
        self._interrupted_early = False
        self._background: set[asyncio.Task[Any]] = set()
        self._ctx: zmq.asyncio.Context | None = None
        self._insock: zmq.asyncio.Socket | None = None
        self._outsock: zmq.asyncio.Socket | None = None

    # ---- API for batch, services, gateway ---------------------------------------------------
    async def send(self, msg_type: str, payload: protocol.Payload = b"") -> None:
        """Push one two-frame message to the agent (awaits while the agent is not reading)."""
        assert self._outsock is not None
        name = msg_type.encode("ascii")
        data = protocol.encode_payload(payload)
        # copy=False: pyzmq hands large payloads to libzmq without another copy (small ones are
        # still copied, below its copy threshold)
        if len(data) <= protocol.MAX_OUTPUT_FRAME or msg_type not in protocol.SPLITTABLE_FRAMES:
            await self._outsock.send_multipart([name, data], copy=False)
            return
        # The agent cuts frames above 10 MiB; output may be split anywhere (it decodes incrementally).
        view = memoryview(data)
        for start in range(0, len(data), protocol.MAX_OUTPUT_FRAME):
            await self._outsock.send_multipart([name, view[start:start + protocol.MAX_OUTPUT_FRAME]], copy=False)

    def next_queued_op(self) -> str | None:
        return self._queue[0].op if self._queue else None

    async def wait_next_queued_op(self, timeout: float) -> str | None:
        """Like `next_queued_op`, but gives the agent's back-to-back frames `timeout` s to arrive."""
        if self._queue or timeout <= 0:
            return self.next_queued_op()
        self._queue_changed.clear()
        try:
            await asyncio.wait_for(self._queue_changed.wait(), timeout)
        except TimeoutError:
            pass
        return self.next_queued_op()

    async def next_user_input(self) -> str:
        return await self._user_inputs.get()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(self._guarded(coro, name), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    @staticmethod
    async def _guarded(coro: Coroutine[Any, Any, Any], name: str) -> Any:
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s failed", name)

    # ---- start-up --------------------------------------------------------------------------
    def _resolve_runtime(self, given: str | None) -> str:
        if given:
            return given
        default = self.language.default_runtime
        if self.language.kernelspec == "python" and not os.path.exists(default):
            return sys.executable
        return default

    def _python_kernel_argv(self) -> list[str]:
        """Run ipykernel under RUNTIME_PATH when that interpreter has it, else under ours."""
        runtime = self.runtime_path
        if os.path.realpath(runtime) != os.path.realpath(sys.executable):
            try:
                ok = subprocess.run(
                    [runtime, "-c", "import ipykernel"], env=self.child_env, capture_output=True, timeout=30
                ).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
            if not ok:
                log.warning("%s cannot import ipykernel; the Python kernel runs under %s", runtime, sys.executable)
                runtime = sys.executable
        return [runtime, "-m", "ipykernel_launcher", "-f", "{connection_file}"]

    def _bind_sockets(self) -> None:
        ports = {"replin": self.app.replin_port, "replout": self.app.replout_port}
        for key, trait in (("replin", "replin_port"), ("replout", "replout_port")):
            if key in self.intrinsic_ports and not self.app.explicitly_set(trait):
                ports[key] = self.intrinsic_ports[key]
        self._ctx = zmq.asyncio.Context()
        self._insock = self._ctx.socket(zmq.PULL)
        self._outsock = self._ctx.socket(zmq.PUSH)
        self._insock.linger = 0
        self._insock.bind(f"tcp://{self.app.bind_ip}:{ports['replin']}")
        self._outsock.bind(f"tcp://{self.app.bind_ip}:{ports['replout']}")
        log.info("serving the agent on %s:%d (in) / %d (out)", self.app.bind_ip, ports["replin"], ports["replout"])

    async def _start_main_kernel(self) -> QueryBridge | None:
        name = self.app.kernel_name or self.language.kernelspec
        if not name:
            self._kernel_error = f"no Jupyter kernelspec is configured for {self.lang}"
            return None
        try:
            if name == "python":
                argv = await asyncio.to_thread(self._python_kernel_argv)
                self.hub.kernel_spec_manager.argv_overrides = {"python": argv}
            env = dict(self.child_env)
            env.update(item.partition("=")[::2] for item in self.app.extra_kernel_env)
            kernel_id = await self.hub.start_kernel(name, env=env, cwd=str(self.work_dir))
            self.hub.main_kernel_id = kernel_id
            bridge = QueryBridge(self, kernel_id)
            await bridge.start()
        except Exception as e:
            self._kernel_error = f"failed to start the {name!r} Jupyter kernel: {e}"
            log.exception("query mode is disabled: %s", self._kernel_error)
            return None
        log.info("main kernel %s (%s) is ready; connection file %s", kernel_id, name, self.hub.connection_file(kernel_id))
        return bridge

    async def _start_gateway(self) -> None:
        if not self.app.gateway_port:
            return
        from .gateway import start_gateway

        self._gateway = await start_gateway(
            self.hub, ip=self.app.gateway_ip, port=self.app.gateway_port, token=self.app.gateway_token,
            config=self.app.config, base_env=lambda: self.child_env,
        )
        self.gateway_url = f"http://{self.app.gateway_ip}:{self._gateway.port}"
        log.info("gateway listening on %s", self.gateway_url)

    async def serve(self) -> None:
        """Run until SIGTERM/SIGINT, then shut down within `shutdown_timeout`."""
        _set_process_name(b"krunner: " + self.lang.encode())
        _return_large_buffers_to_the_os()
        os.chdir(self.work_dir)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        self._bind_sockets()
        receiver = asyncio.create_task(self._receive_loop(), name="receive-loop")
        worker: asyncio.Task[None] | None = None
        try:
            setup = getattr(self.language, "setup", None)
            if setup is not None:
                await self._run_step("language setup", setup(self))
            self._bridge = asyncio.ensure_future(self._start_main_kernel())
            await self._run_step("gateway", self._start_gateway())
            await self._run_step("batch input socket", self.batch.start())
            await self._run_step("services", self.services.start())
            bootstrap = self.work_dir / "bootstrap.sh"
            if bootstrap.is_file():
                self._queue.append(protocol.Request("bootstrap", str(bootstrap)))
            worker = asyncio.create_task(self._task_loop(), name="task-loop")
            await stop.wait()
        finally:
            await self._shutdown(receiver, worker)

    async def _run_step(self, what: str, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except Exception:
            log.exception("%s failed (check the image configs/labels like `ai.backend.runtime-path`)", what)

    # ---- receiving -------------------------------------------------------------------------
    async def _receive_loop(self) -> None:
        assert self._insock is not None
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
        op, text = request.op, request.text
        if request.error:
            log.warning("bad request: %s", request.error)
            if op not in protocol.QUEUED_OPS and op != "status":
                await self._answer_bad_request(request)
                return
        if op in protocol.QUEUED_OPS:
            self._queue.append(request)
            self._queue_changed.set()
        elif op == "status":
            await self.send("status", protocol.encode_status(self.started_at))
        elif op == "input":
            self._user_inputs.put_nowait(text)
        elif op == "complete":
            self.spawn(self._complete(text), "complete")
        elif op == "interrupt":
            self.spawn(self._interrupt(), "interrupt")
        elif op == "get-apps":
            await self.services.op_get_apps(text)
        elif op == "event":
            self._log_event(text)
        elif op == "start-service":
            self.spawn(self.services.op_start_service(text), "start-service")
        elif op == "shutdown-service":
            self.spawn(self.services.op_shutdown_service(text), "shutdown-service")
        elif op == "start-model-service":
            self.spawn(self.services.op_start_model_service(text), "start-model-service")

    async def _answer_bad_request(self, request: protocol.Request) -> None:
        """The reply a waiting agent expects, saying what was wrong with its request."""
        if request.op == "complete":
            await self.send("completion", {"suggestions": []})
        elif request.op == "get-apps":
            await self.send("apps-result", {"status": "failed", "data": [], "error": request.error})
        elif request.op == "start-service":
            await self.send("service-result", {"status": "failed", "error": request.error})
        elif request.op == "start-model-service":
            await self.send("model-service-result", {"status": "failed", "error": request.error})

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
            await self.send("completion", {"suggestions": suggestions})

    async def _interrupt(self) -> None:
        if await self.batch.interrupt():
            return
        bridge = self._bridge.result() if self._bridge is not None and self._bridge.done() else None
        if bridge is not None:
            await bridge.interrupt()
        elif self._running_op == "code":
            self._interrupted_early = True  # the query still waits for the kernel: cancel it

    def _log_event(self, text: str) -> None:
        try:
            event = protocol.parse_json_object(text, "event")
        except protocol.ProtocolError as e:
            log.warning("%s", e)
            return
        log.warning("Agent-notified event: %s %r", event.get("type"), event.get("data"))

    # ---- the serial task queue -------------------------------------------------------------
    async def _task_loop(self) -> None:
        while True:
            while not self._queue:
                self._queue_changed.clear()
                await self._queue_changed.wait()
            request = self._queue.popleft()
            self._running_op = request.op
            try:
                if request.error:
                    await self.send("stderr", f"krunner: {request.error}\n")
                    await self.send(protocol.FINISH_FRAME[request.op], {"exitCode": 127})
                elif request.op == "code":
                    await self._run_query(request.text)
                elif request.op == "bootstrap":
                    code = await self.batch.run_script(["/bin/sh", request.text])
                    log.info("bootstrap.sh exited with %d", code)
                else:
                    await self.batch.run(request.op, request.text)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s task failed", request.op)
                if request.op in protocol.FINISH_FRAME:
                    await self.send("stderr", f"krunner: internal error while running {request.op}; see the runner log\n")
                    await self.send(protocol.FINISH_FRAME[request.op], {"exitCode": -1})
            finally:
                self._running_op = None

    async def _run_query(self, code: str) -> None:
        assert self._bridge is not None
        self._interrupted_early = False
        bridge = await self._bridge
        if self._interrupted_early:
            await self.send("stderr", "KeyboardInterrupt: interrupted before the kernel was ready\n")
            await self.send("finished", {"exitCode": 1})
            return
        if bridge is None:
            await self.send("stderr", f"query mode is not available: {self._kernel_error}\n")
            await self.send("finished", {"exitCode": 127})
            return
        try:
            exit_code = await bridge.execute(code)
        except TimeoutError as e:
            await self.send("stderr", f"query mode is not available: {e}\n")
            exit_code = 127
        await self.send("finished", {"exitCode": exit_code})

    # ---- shutdown --------------------------------------------------------------------------
    async def _shutdown(self, receiver: asyncio.Task[Any], worker: asyncio.Task[Any] | None) -> None:
        log.info("shutting down")
        budget = self.app.shutdown_timeout
        if self._insock is not None:
            self._insock.close(linger=0)
        tasks = [t for t in (receiver, worker, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        steps: list[Coroutine[Any, Any, Any]] = [self.services.shutdown(), self.batch.shutdown()]
        if self._gateway is not None:
            steps.append(self._gateway.close())
        await self._bounded(asyncio.gather(*steps, return_exceptions=True), budget * 0.6, "services/batch")
        if self._bridge is not None:
            if not self._bridge.done():
                self._bridge.cancel()
            else:
                bridge = self._bridge.result()
                if bridge is not None:
                    await self._bounded(bridge.close(), 0.5, "bridge")
        await self._bounded(self.hub.shutdown_all(now=True), budget * 0.3, "kernels")
        if self._outsock is not None:
            self._outsock.close(linger=int(self.app.send_timeout * 1000))
        if self._ctx is not None:
            self._ctx.destroy(linger=0)
        log.info("bye")

    @staticmethod
    async def _bounded(awaitable: Any, timeout: float, what: str) -> None:
        try:
            await asyncio.wait_for(awaitable, timeout)
        except (TimeoutError, asyncio.CancelledError):
            log.warning("shutdown of %s took longer than %.1f s; moving on", what, timeout)
        except Exception:
            log.exception("shutdown of %s failed", what)
