"""App services of the runner (PROTOCOL §8): `get-apps`, `start-service`, `shutdown-service`,
`start-model-service`, and the intrinsic `sshd`/`ttyd` started at start-up.

Locking is per service name, so a slow start never delays other services or the receive loop; a
`shutdown-service` does not wait for a start in progress, it ends that start's process.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import legacy
from .actions import ActionContext, run_actions
from .definitions import ServiceDefinition, build_argv, build_env, load_directory
from .errors import InvalidServiceDefinition, ServiceError
from .intrinsic import Dropbear, SshSetup, find_binary, init_sshd, pick_shell, sshd_argv, ttyd_argv
from .model import ModelService, health_loop, parse_model_config
from .process import ServiceExited, ServiceProcess
from .terminal import WebTerminal
from .terminal import available as terminado_available

if TYPE_CHECKING:
    from ..runner import Runner

log = logging.getLogger(__name__)

__all__ = ["ServiceManager"]

INTRINSIC_DEFAULT_PORTS = {"sshd": 2200, "ttyd": 7681}
INTRINSIC_PROTOCOLS = {"sshd": "tcp", "ttyd": "http"}
SHUTDOWN_GRACE = 1.5  # seconds between SIGTERM and SIGKILL when the runner exits


@dataclass
class _Launch:
    """What to start for one request; `web_terminal` replaces argv when ttyd must be served by us."""

    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    noop: bool = False
    web_terminal: bool = False


def _failed(error: str) -> dict[str, str]:
    return {"status": "failed", "error": error}


class ServiceManager:
    """Owns every service process of the runner; none survives `shutdown()`."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.definitions: dict[str, ServiceDefinition] = {}
        self.definition_errors: dict[str, str] = {}
        self.model_services: dict[str, ModelService] = {}
        self.running: dict[str, ServiceProcess] = {}
        self.web_terminal: WebTerminal | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._health: dict[str, asyncio.Task[None]] = {}
        self._sshd_ready = False
        self._closing = False
        # Loaded here, not in start(): the runner answers get-apps while its start-up is under way.
        self.load_definitions()

    def load_definitions(self) -> None:
        defs_dir = Path(self._opt("service_defs_dir", "/etc/backend.ai/service-defs", "KRUNNER_SERVICE_DEFS_DIR"))
        self.definitions, self.definition_errors = load_directory(defs_dir)

    # ----- configuration (traits on the runner app; env fallbacks until the lead adds them) -----
    def _opt(self, name: str, default: Any, env: str | None = None) -> Any:
        value = getattr(getattr(self.runner, "app", None), name, None)
        if value is None and env:
            value = os.environ.get(env)
        return default if value is None else value

    @property
    def launch_timeout(self) -> float:
        return float(self._opt("service_launch_timeout", 30.0, "KRUNNER_SERVICE_LAUNCH_TIMEOUT"))

    @property
    def bind_ip(self) -> str:
        return str(self._opt("intrinsic_bind_ip", "0.0.0.0", "KRUNNER_INTRINSIC_BIND_IP"))

    @property
    def ssh_setup(self) -> SshSetup:
        key_dir = self._opt("ssh_key_dir", "/tmp/dropbear", "KRUNNER_SSH_KEY_DIR")
        return SshSetup(Path(self.runner.work_dir), Path(self.runner.config_dir), Path(key_dir))

    @property
    def env_path(self) -> str | None:
        return self.runner.child_env.get("PATH")

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    # ----- start-up -----
    async def start(self) -> None:
        """Start intrinsic services in the background (never delays `status`); defs are loaded already."""
        wanted = self._opt("intrinsic_services", None, "KRUNNER_INTRINSIC_SERVICES")
        if isinstance(wanted, str):
            wanted = [w.strip() for w in wanted.split(",") if w.strip()]
        for name in ("sshd", "ttyd") if wanted is None else wanted:
            if name in INTRINSIC_DEFAULT_PORTS:
                self._spawn(self._start_intrinsic(name), f"intrinsic-{name}")

    def _intrinsic_port(self, name: str) -> int:
        ports = getattr(self.runner, "intrinsic_ports", None) or {}
        return int(ports.get(name, INTRINSIC_DEFAULT_PORTS[name]))

    async def _start_intrinsic(self, name: str) -> None:
        if name == "sshd" and Dropbear.find(self.env_path) is None:
            log.info("sshd is not available: no dropbear binary found")
            return
        if name == "ttyd" and not find_binary("ttyd", self.env_path) and not terminado_available():
            log.info("ttyd is not available: neither a ttyd binary nor terminado is installed")
            return
        port = self._intrinsic_port(name)
        info = {"name": name, "port": port, "ports": [port], "protocol": INTRINSIC_PROTOCOLS[name], "options": {}}
        try:
            result = await self.start_service(info, launch_timeout=10.0)
        except Exception:
            log.exception("intrinsic service %s failed to start", name)
            return
        if result["status"] == "failed":
            log.warning("intrinsic service %s failed to start: %s", name, result.get("error"))
        else:
            log.info("intrinsic service %s %s on port %d", name, result["status"], port)

    # ----- ops -----
    async def op_get_apps(self, text: str) -> None:
        selected = (text or "").strip()
        with contextlib.suppress(ValueError):
            decoded = json.loads(selected)  # tolerate a JSON-quoted name
            if isinstance(decoded, str):
                selected = decoded
        apps = [d.app_info() for d in self._all_definitions() if not selected or d.name == selected]
        log.debug("get-apps %r: %d app(s)", selected, len(apps))
        await self.runner.send("apps-result", {"status": "done", "data": apps})

    def _all_definitions(self) -> list[ServiceDefinition]:
        return [*self.definitions.values(), *(m.definition for m in self.model_services.values())]

    async def op_start_service(self, text: str) -> None:
        try:
            info = json.loads(text)
            if not isinstance(info, dict) or not isinstance(info.get("name"), str):
                raise ValueError("expected an object with a 'name'")
            result = await self.start_service(info)
        except ValueError as e:
            result = _failed(f"invalid start-service payload: {e}")
        except Exception as e:
            log.exception("start-service: unexpected error")
            result = _failed(repr(e))
        await self.runner.send("service-result", result)

    async def op_shutdown_service(self, text: str) -> None:
        name = (text or "").strip()
        with contextlib.suppress(ValueError):
            decoded = json.loads(name)
            if isinstance(decoded, str):
                name = decoded
        await self.stop_service(name)

    async def op_start_model_service(self, text: str) -> None:
        try:
            model = parse_model_config(json.loads(text))
        except (ValueError, InvalidServiceDefinition) as e:
            log.warning("start-model-service: %s", e)
            await self.runner.send("model-service-result", _failed(f"invalid model config: {e}"))
            return
        self.model_services[model.definition.name] = model
        info = {"name": model.definition.name, "port": model.port, "ports": [model.port], "protocol": "http", "options": {}}
        try:
            result = await self.start_service(info, cwd=Path(model.model_path), wait_port=False)
        except Exception as e:
            log.exception("start-model-service: unexpected error")
            result = _failed(repr(e))
        if result["status"] != "started":
            log.warning("model service %s did not start: %s", model.definition.name, result)
            await self.runner.send("model-service-result", _failed("service failed to start"))
            return
        await self.runner.send("model-service-result", result)
        if model.health is None:
            await self._report_health(model.model_name, True)
            return
        old = self._health.pop(model.definition.name, None)
        if old is not None:
            old.cancel()
        self._health[model.definition.name] = self._spawn(
            health_loop(model.model_name, model.port, model.health, lambda ok: self._report_health(model.model_name, ok)),
            f"health-{model.definition.name}",
        )

    async def _report_health(self, model_name: str, healthy: bool) -> None:
        await self.runner.send("model-service-status", {"model_name": model_name, "is_healthy": healthy})

    # ----- the start-service algorithm (§8.4) -----
    def is_running(self, name: str) -> bool:
        if name == "ttyd" and self.web_terminal is not None and self.web_terminal.running:
            return True
        proc = self.running.get(name)
        return proc is not None and proc.alive

    async def start_service(
        self, info: dict[str, Any], *, cwd: Path | None = None, wait_port: bool = True,
        launch_timeout: float | None = None,
    ) -> dict[str, str]:
        name: str = info["name"]
        protocol = info.get("protocol", "tcp")
        if protocol == "preopen":
            return {"status": "started"}
        if self._closing:
            return _failed("the runner is shutting down")
        try:
            port = int(info["port"])
            ports = [int(p) for p in (info.get("ports") or [port])]
        except (KeyError, TypeError, ValueError):
            return _failed(f"invalid port for service {name}")
        options = info.get("options") or {}
        async with self._lock(name):
            if self.is_running(name):
                return {"status": "running"}
            if protocol == "pty":
                return _failed("not implemented yet")
            workdir = cwd if cwd is not None else Path(self.runner.work_dir)
            if not workdir.is_dir():
                if cwd is not None:
                    return _failed(f"the model directory does not exist: {cwd}")
                return _failed(f"the working directory does not exist: {workdir}")
            try:
                launch = await self._resolve(name, port, ports, options, workdir)
            except ServiceError as e:
                log.warning("service %s: %r", name, e)
                # Rejections keep the original's repr() form; our own plain errors read as sentences.
                return _failed(str(e) if type(e) is ServiceError else repr(e))
            if launch is None:
                return _failed(f"unsupported service: {name}")
            if launch.noop:
                return {"status": "started"}
            if launch.web_terminal:
                return await self._start_web_terminal(port, workdir)
            env = {**self.runner.child_env, **launch.env}
            if "LD_LIBRARY_PATH" in env:
                env["LD_LIBRARY_PATH"] = env["LD_LIBRARY_PATH"].replace("/opt/backend.ai/lib:", "")
            try:
                proc = await ServiceProcess.spawn(name, launch.argv, env, launch.cwd or workdir)
            except PermissionError:
                return _failed(f"the target file is not executable: {launch.argv[0]}")
            except FileNotFoundError as e:
                missing = launch.argv[0] if not e.filename or e.filename == launch.argv[0] else e.filename
                return _failed(f"the executable file is not found: {missing}")
            self.running[name] = proc
            self._spawn(self._watch(name, proc), f"watch-{name}")
            if not wait_port:
                return {"status": "started"}
            timeout = self.launch_timeout if launch_timeout is None else launch_timeout
            try:
                await proc.wait_port(port, timeout)
            except ServiceExited as e:
                if proc.stopping:
                    return _failed(f"the service was shut down while starting: {name}")
                log.warning("%s", e)
                return _failed(str(e))
            except asyncio.TimeoutError:
                await self._stop_proc(name, proc)
                return _failed(f"opening the service port timed out: {name}")
            log.info("service %s started (pid %d, port %d)", name, proc.pid, port)
            return {"status": "started"}

    async def _resolve(
        self, name: str, port: int, ports: list[int], options: dict[str, Any], workdir: Path,
    ) -> _Launch | None:
        if name == "sshd":
            dropbear = Dropbear.find(self.env_path)
            if dropbear is None:
                raise ServiceError("the executable file is not found: dropbear")
            setup = self.ssh_setup
            if not self._sshd_ready:
                try:
                    await init_sshd(setup, dropbear, self.runner.child_env)
                except (OSError, RuntimeError) as e:
                    raise ServiceError(f"sshd init failed: {e}") from e
                self._sshd_ready = True
            return _Launch(sshd_argv(dropbear, setup.host_key, ports, self.bind_ip))
        if name == "ttyd":
            ttyd = find_binary("ttyd", self.env_path)
            if ttyd is None:
                if not terminado_available():
                    raise ServiceError("the executable file is not found: ttyd (and terminado is not installed)")
                return _Launch(web_terminal=True)
            tmux = find_binary("tmux", self.env_path)
            return _Launch(ttyd_argv(ttyd, port, self.bind_ip, tmux))
        defn = self.definitions.get(name) or (m.definition if (m := self.model_services.get(name)) else None)
        if defn is not None:
            if defn.noop:
                return _Launch(noop=True)
            variables: dict[str, Any] = {"runtime_path": str(self.runner.runtime_path), "ports": ports}
            ctx = ActionContext(env=self.runner.child_env, cwd=workdir)
            try:
                await run_actions(defn.prestart_actions, ctx, variables)
            except ServiceError:
                raise
            except Exception as e:
                raise ServiceError(f"prestart action failed for {name}: {e!r}") from e
            argv = build_argv(defn, variables, options, self.env_path)
            env = build_env(defn, variables, options, self.runner.child_env.keys())
            return _Launch(argv, env)
        if self.runner.lang in legacy.PYTHON_LANGS:
            start = legacy.python_service(
                name, port, str(self.runner.runtime_path), Path(self.runner.work_dir),
                gateway_url=getattr(self.runner, "gateway_url", None),
                gateway_token=self._opt("gateway_token", None) or None,
            )
            if start is not None:
                return _Launch(start.argv, start.env, start.cwd)
        return None

    async def _start_web_terminal(self, port: int, workdir: Path) -> dict[str, str]:
        shell = pick_shell()
        env = {**self.runner.child_env, "SHELL": shell}
        term = WebTerminal(port, self.bind_ip, [shell], env, workdir)
        try:
            await term.start()
        except OSError as e:
            return _failed(f"the web terminal could not listen on port {port}: {e.strerror or e}")
        self.web_terminal = term
        return {"status": "started"}

    async def _watch(self, name: str, proc: ServiceProcess) -> None:
        await asyncio.shield(proc.exited)
        if self.running.get(name) is proc:
            del self.running[name]
        # Reap whatever the service left behind in its process group.
        await proc.terminate(grace=0.0, kill_wait=0.1)

    async def _stop_proc(self, name: str, proc: ServiceProcess, grace: float = 2.0) -> None:
        proc.stopping = True
        if self.running.get(name) is proc:
            del self.running[name]
        await proc.terminate(grace=grace, kill_wait=0.3)

    async def stop_service(self, name: str) -> None:
        """`shutdown-service`: terminate the named service's process group (SIGTERM, 2 s, SIGKILL)."""
        health = self._health.pop(name, None)
        if health is not None:
            health.cancel()
        if name == "ttyd" and self.web_terminal is not None:
            term, self.web_terminal = self.web_terminal, None
            await term.stop()
            log.info("web terminal stopped")
            return
        proc = self.running.get(name)
        if proc is None:
            log.info("shutdown-service %s: not running", name)
            return
        await self._stop_proc(name, proc)
        log.info("service %s stopped", name)

    async def shutdown(self) -> None:
        """Stop everything, bounded (about 3 s): pending starts, health loops, processes, web terminal."""
        self._closing = True
        starting = [t for t in self._tasks if not t.get_name().startswith("watch-")]
        for task in starting:
            task.cancel()
        if starting:
            await asyncio.wait(starting, timeout=0.2)
        # The runner gives services and batch 60 % of its shutdown budget (2.4 s by default).
        stops: list[Coroutine[Any, Any, None]] = [
            self._stop_proc(n, p, grace=SHUTDOWN_GRACE) for n, p in list(self.running.items())
        ]
        if self.web_terminal is not None:
            term, self.web_terminal = self.web_terminal, None
            stops.append(term.stop())
        for r in await asyncio.gather(*stops, return_exceptions=True):
            if isinstance(r, Exception):
                log.warning("error while stopping a service: %r", r)
        pending = [t for t in self._tasks if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=0.2)
