"""ServiceManager: the runner's app services (docs/services.md): `get-apps`, `start-service`,
`shutdown-service`, `start-model-service`, and the intrinsic `sshd`/`ttyd` started at start-up.

Locking is per service name, so a slow start never delays other services or the receive loop; a
`shutdown-service` does not wait for a start in progress, it ends that start's process. What to
launch for a name is decided by `resolvers`; this module owns the processes and the replies.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from traitlets import Float, List, Unicode
from traitlets.config import Configurable

from ..agentlink import AgentLink
from ..environment import in_agent_container
from ..options import from_env
from ..origin import ALLOW_ORIGINS_ENV
from ..procfacts import pdeathsig_argv
from .definitions import ServiceDefinition, load_directory
from .errors import InvalidServiceDefinition, ServiceError
from .intrinsic import Dropbear, SshSetup, find_binary, pick_shell
from .model import ModelService, health_loop, parse_model_config
from .process import ServiceExited, ServiceProcess
from .reaper import REAPER
from .resolvers import BuiltinResolver, DefinitionResolver, Launch, StartRequest, SshdResolver, TtydResolver
from .terminal import WebTerminal
from .terminal import available as terminado_available

log = logging.getLogger(__name__)

INTRINSIC_DEFAULT_PORTS = {"sshd": 2200, "ttyd": 7681}
INTRINSIC_PROTOCOLS = {"sshd": "tcp", "ttyd": "http"}
SHUTDOWN_GRACE = 1.5  # seconds between SIGTERM and SIGKILL when the runner exits


def _failed(error: str) -> dict[str, str]:
    return {"status": "failed", "error": error}


def _default_bind_ip(manager: ServiceManager) -> str:
    return "0.0.0.0" if in_agent_container(manager.config_dir) else "127.0.0.1"


class ServiceManager(Configurable):
    """Owns every service process of the runner; none survives `shutdown()`."""

    defs_dir = from_env(Unicode("/etc/backend.ai/service-defs", help="service definition directory").tag(config=True),
                        "KRUNNER_SERVICE_DEFS_DIR")
    launch_timeout = Float(30.0, help="seconds to wait for a started service's port").tag(config=True)
    intrinsic_services = from_env(
        List(Unicode(), ["sshd", "ttyd"], help="intrinsic services started at start-up (sshd, ttyd); "
             "empty = none; the variable is comma-separated").tag(config=True),
        "KRUNNER_INTRINSIC_SERVICES")
    bind_ip = from_env(
        Unicode(help="address sshd, the web terminal and the built-in apps listen on; default 0.0.0.0 inside an agent's "
                "container (as the original), 127.0.0.1 elsewhere").tag(config=True),
        "KRUNNER_INTRINSIC_BIND_IP", fallback=_default_bind_ip, shown="0.0.0.0 in an agent's container, else 127.0.0.1")
    allow_origins = from_env(
        List(Unicode(), help="browser origins the web terminal accepts besides its own host: exact "
             "origins or patterns where * stands for any characters but '/' (e.g. the agent's "
             "app-proxy origin); see docs/security.md").tag(config=True),
        ALLOW_ORIGINS_ENV)
    ssh_key_dir = from_env(Unicode("/tmp/dropbear", help="generated SSH keys, recreated at every start").tag(config=True),
                           "KRUNNER_SSH_KEY_DIR")

    def __init__(self, link: AgentLink, *, lang: str, work_dir: Path, config_dir: Path, runtime_path: str,
                 child_env: Mapping[str, str], intrinsic_ports: Mapping[str, int], gateway_token: str = "",
                 **config: Any) -> None:
        """`child_env` is the runner's child environment, read at each start and never changed."""
        self.config_dir = Path(config_dir)  # before the traits: the bind_ip default reads it
        super().__init__(**config)
        self.link = link
        self.work_dir = Path(work_dir)
        self.child_env = child_env
        self.intrinsic_ports = intrinsic_ports
        self.definitions: dict[str, ServiceDefinition] = {}
        self.definition_errors: dict[str, str] = {}
        self.model_services: dict[str, ModelService] = {}
        self.running: dict[str, ServiceProcess] = {}
        self.web_terminal: WebTerminal | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._health: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        self._builtins = BuiltinResolver(lang, runtime_path, self.work_dir, gateway_token, self.bind_ip)
        self.resolvers = (
            SshdResolver(SshSetup(self.work_dir, self.config_dir, Path(self.ssh_key_dir)), child_env, self.bind_ip),
            TtydResolver(child_env, self.bind_ip, self.allow_origins),
            DefinitionResolver(self._definition, runtime_path, child_env),
            self._builtins,
        )
        # Loaded here, not in start(): the runner answers get-apps while its start-up is under way.
        self.load_definitions()
        # Here, while the kernel starts: from now on nothing the runner starts outlives it.
        REAPER.start()

    def load_definitions(self) -> None:
        self.definitions, self.definition_errors = load_directory(Path(self.defs_dir))

    def _definition(self, name: str) -> ServiceDefinition | None:
        model = self.model_services.get(name)
        return self.definitions.get(name) or (model.definition if model else None)

    @property
    def env_path(self) -> str | None:
        return self.child_env.get("PATH")

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    # ----- start-up -----
    async def start(self, gateway_url: str | None = None) -> None:
        """Start intrinsic services in the background (never delays `status`); defs are loaded already.
        `gateway_url`: the runner's gateway, which the built-in jupyter apps then use for kernels."""
        self._builtins.gateway_url = gateway_url
        for name in self.intrinsic_services:
            if name in INTRINSIC_DEFAULT_PORTS:
                self._spawn(self._start_intrinsic(name), f"intrinsic-{name}")

    def _intrinsic_port(self, name: str) -> int:
        return int(self.intrinsic_ports.get(name, INTRINSIC_DEFAULT_PORTS[name]))

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
        await self.link.send("apps-result", {"status": "done", "data": apps})

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
        await self.link.send("service-result", result)

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
            await self.link.send("model-service-result", _failed(f"invalid model config: {e}"))
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
            await self.link.send("model-service-result", _failed(f"service failed to start: {result.get('error') or result.get('status')}"))
            return
        await self.link.send("model-service-result", result)
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
        await self.link.send("model-service-status", {"model_name": model_name, "is_healthy": healthy})

    # ----- the start-service algorithm (docs/services.md#starting-and-stopping) -----
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
            workdir = cwd if cwd is not None else self.work_dir
            if not workdir.is_dir():
                if cwd is not None:
                    return _failed(f"the model directory does not exist: {cwd}")
                return _failed(f"the working directory does not exist: {workdir}")
            try:
                launch = await self._resolve(StartRequest(name, port, ports, options, workdir))
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
            env = {**self.child_env, **launch.env}
            if "LD_LIBRARY_PATH" in env:
                env["LD_LIBRARY_PATH"] = env["LD_LIBRARY_PATH"].replace("/opt/backend.ai/lib:", "")
            try:
                proc = await ServiceProcess.spawn(name, launch.argv, env, launch.cwd or workdir)
            except PermissionError:
                return _failed(f"the target file is not executable: {launch.argv[0]}")
            except FileNotFoundError as e:
                missing = launch.argv[0] if not e.filename or e.filename == launch.argv[0] else e.filename
                return _failed(f"the executable file is not found: {missing}")
            except OSError as e:
                return _failed(f"cannot start {launch.argv[0]}: {e.strerror or e}")
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

    async def _resolve(self, request: StartRequest) -> Launch | None:
        for resolver in self.resolvers:
            launch = await resolver.resolve(request)
            if launch is not None:
                return launch
        return None

    async def _start_web_terminal(self, port: int, workdir: Path) -> dict[str, str]:
        shell = pick_shell()
        env = {**self.child_env, "SHELL": shell}
        # Each shell is forked by the loop's (main) thread: with the prefix it dies with the runner.
        term = WebTerminal(port, self.bind_ip, [*pdeathsig_argv(), shell], env, workdir, self.allow_origins)
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
