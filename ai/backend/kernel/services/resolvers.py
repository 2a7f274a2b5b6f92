"""What to start for a service name: one resolver per kind of service (docs/services.md).

The manager asks each resolver in turn; the first that knows the name says what to launch:
  * `SshdResolver`: the intrinsic `sshd` (dropbear, with its one-time key setup);
  * `TtydResolver`: the intrinsic `ttyd` (the binary, else our terminado web terminal);
  * `DefinitionResolver`: a service-definition file or a started model service (prestart actions,
    arguments, environment);
  * `BuiltinResolver`: the python runner's built-in apps (jupyter, tensorboard, ...).
A resolver raises `ServiceError` to refuse a start with a reason the agent is shown.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import legacy
from .actions import ActionContext, run_actions
from .definitions import ServiceDefinition, build_argv, build_env
from .errors import ServiceError
from .intrinsic import Dropbear, SshSetup, find_binary, init_sshd, sshd_argv, ttyd_argv
from .terminal import available as terminado_available


@dataclass
class StartRequest:
    name: str
    port: int
    ports: list[int]
    options: dict[str, Any]
    workdir: Path


@dataclass
class Launch:
    """What to start; `web_terminal` replaces argv when ttyd must be served by us."""

    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    noop: bool = False
    web_terminal: bool = False


class SshdResolver:
    def __init__(self, setup: SshSetup, child_env: Mapping[str, str], bind_ip: str) -> None:
        self.setup, self.child_env, self.bind_ip = setup, child_env, bind_ip
        self._ready = False  # keys are made once per runner

    async def resolve(self, request: StartRequest) -> Launch | None:
        if request.name != "sshd":
            return None
        dropbear = Dropbear.find(self.child_env.get("PATH"))
        if dropbear is None:
            raise ServiceError("the executable file is not found: dropbear")
        if not self._ready:
            try:
                await init_sshd(self.setup, dropbear, self.child_env)
            except (OSError, RuntimeError) as e:
                raise ServiceError(f"sshd init failed: {e}") from e
            self._ready = True
        return Launch(sshd_argv(dropbear, self.setup.host_key, request.ports, self.bind_ip))


class TtydResolver:
    def __init__(self, child_env: Mapping[str, str], bind_ip: str, allow_origins: Sequence[str] = ()) -> None:
        self.child_env, self.bind_ip, self.allow_origins = child_env, bind_ip, allow_origins

    async def resolve(self, request: StartRequest) -> Launch | None:
        if request.name != "ttyd":
            return None
        path = self.child_env.get("PATH")
        ttyd = find_binary("ttyd", path)
        if ttyd is not None and self.allow_origins and terminado_available():
            ttyd = None  # ttyd cannot enforce an allow-list; our terminal can (docs/security.md)
        if ttyd is None:
            if not terminado_available():
                raise ServiceError("the executable file is not found: ttyd (and terminado is not installed)")
            return Launch(web_terminal=True)
        return Launch(ttyd_argv(ttyd, request.port, self.bind_ip, find_binary("tmux", path), self.allow_origins))


class DefinitionResolver:
    def __init__(self, lookup: Callable[[str], ServiceDefinition | None], runtime_path: str,
                 child_env: Mapping[str, str]) -> None:
        self.lookup, self.runtime_path, self.child_env = lookup, runtime_path, child_env

    async def resolve(self, request: StartRequest) -> Launch | None:
        defn = self.lookup(request.name)
        if defn is None:
            return None
        if defn.noop:
            return Launch(noop=True)
        variables: dict[str, Any] = {"runtime_path": self.runtime_path, "ports": request.ports}
        try:
            await run_actions(defn.prestart_actions, ActionContext(env=self.child_env, cwd=request.workdir), variables)
        except ServiceError:
            raise
        except Exception as e:
            raise ServiceError(f"prestart action failed for {request.name}: {e!r}") from e
        argv = build_argv(defn, variables, request.options, self.child_env.get("PATH"))
        env = build_env(defn, variables, request.options, self.child_env.keys())
        return Launch(argv, env)


class BuiltinResolver:
    """The built-in apps of the python runner; `gateway_url` is set once the gateway listens."""

    def __init__(self, lang: str, runtime_path: str, work_dir: Path, gateway_token: str, bind_ip: str) -> None:
        self.lang, self.runtime_path, self.work_dir, self.bind_ip = lang, runtime_path, work_dir, bind_ip
        self.gateway_token = gateway_token
        self.gateway_url: str | None = None

    async def resolve(self, request: StartRequest) -> Launch | None:
        if self.lang not in legacy.PYTHON_LANGS:
            return None
        start = legacy.python_service(request.name, request.port, self.runtime_path, self.work_dir,
                                      gateway_url=self.gateway_url, gateway_token=self.gateway_token or None,
                                      bind_ip=self.bind_ip)
        return None if start is None else Launch(start.argv, start.env, start.cwd)

