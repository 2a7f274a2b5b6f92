"""Service-definition files (docs/services.md#service-definitions): strict parsing and argv/env
assembly; the variables are filled in by `interpolation`.

A definition that cannot be parsed is reported and skipped (never fatal, unlike the original),
so every check the original did lazily at start time is done here, once, at load time.
"""
from __future__ import annotations

import json
import logging
import shlex
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .actions import ACTIONS
from .errors import DisallowedArgument, DisallowedEnvironment, InvalidServiceDefinition
from .interpolation import check_template_syntax, interpolate

log = logging.getLogger(__name__)

ArgValue = None | str | list[str]


@dataclass
class PrestartAction:
    action: str
    args: dict[str, Any]
    ref: str | None = None


@dataclass
class ServiceDefinition:
    """One app the image offers; `name` is the file stem (or `<model>-<port>` for model services)."""

    name: str
    command: str | list[str] = field(default_factory=list)
    shell: str | None = "bash"
    noop: bool = False
    url_template: str = ""
    prestart_actions: list[PrestartAction] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    allowed_envs: list[str] = field(default_factory=list)
    allowed_arguments: list[str] = field(default_factory=list)
    default_arguments: dict[str, ArgValue] = field(default_factory=dict)

    def app_info(self) -> dict[str, Any]:
        """The `get-apps` item (docs/protocol.md#service-ops): optional keys only when non-empty."""
        info: dict[str, Any] = {"name": self.name}
        if self.url_template:
            info["url_template"] = self.url_template
        if self.allowed_arguments:
            info["allowed_arguments"] = list(self.allowed_arguments)
        if self.allowed_envs:
            info["allowed_envs"] = list(self.allowed_envs)
        return info


_KEYS = {
    "command", "shell", "noop", "url_template", "prestart", "prestart_actions", "env",
    "allowed_envs", "allowed_arguments", "default_arguments",
}


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def parse_actions(raw: Any) -> list[PrestartAction]:
    if not isinstance(raw, list):
        raise InvalidServiceDefinition("'prestart' must be a list of actions")
    actions = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("action"), str):
            raise InvalidServiceDefinition(f"prestart action #{i} must be an object with an 'action' name")
        unknown = set(item) - {"action", "args", "ref"}
        if unknown:
            raise InvalidServiceDefinition(f"prestart action #{i} has unknown keys: {sorted(unknown)}")
        if item["action"] not in ACTIONS:
            raise InvalidServiceDefinition(f"unknown prestart action: {item['action']!r}")
        args = item.get("args") or {}
        ref = item.get("ref")
        if not isinstance(args, dict) or (ref is not None and not isinstance(ref, str)):
            raise InvalidServiceDefinition(f"prestart action #{i}: 'args' must be an object, 'ref' a string")
        ACTIONS[item["action"]].check_args(args)
        actions.append(PrestartAction(item["action"], dict(args), ref))
    return actions


def parse_definition(name: str, raw: Any) -> ServiceDefinition:
    """Validate one decoded service-def object; raises `InvalidServiceDefinition` with the reason."""
    if not isinstance(raw, dict):
        raise InvalidServiceDefinition("the top level must be a JSON object")
    unknown = set(raw) - _KEYS
    if unknown:
        raise InvalidServiceDefinition(f"unknown keys: {sorted(unknown)}")
    if "prestart" in raw and "prestart_actions" in raw:
        raise InvalidServiceDefinition("both 'prestart' and 'prestart_actions' are given")
    defn = ServiceDefinition(name=name)
    noop = raw.get("noop", False)
    if not isinstance(noop, bool):
        raise InvalidServiceDefinition("'noop' must be a boolean")
    defn.noop = noop
    if "command" not in raw and not noop:
        raise InvalidServiceDefinition("'command' is required")
    command = raw.get("command", [])
    if not (isinstance(command, str) or _is_str_list(command)):
        raise InvalidServiceDefinition("'command' must be a string or a list of strings")
    if not noop and not command:
        raise InvalidServiceDefinition("'command' is empty")
    defn.command = command
    shell = raw.get("shell", "bash")
    if shell is not None and not isinstance(shell, str):
        raise InvalidServiceDefinition("'shell' must be a string or null")
    defn.shell = shell
    url_template = raw.get("url_template", "")
    if not isinstance(url_template, str):
        raise InvalidServiceDefinition("'url_template' must be a string")
    defn.url_template = url_template
    defn.prestart_actions = parse_actions(raw.get("prestart", raw.get("prestart_actions", [])))
    env = raw.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise InvalidServiceDefinition("'env' must map names to strings")
    defn.env = dict(env)
    for key in ("allowed_envs", "allowed_arguments"):
        value = raw.get(key, [])
        if not _is_str_list(value):
            raise InvalidServiceDefinition(f"'{key}' must be a list of strings")
        setattr(defn, key, list(value))
    defaults = raw.get("default_arguments", {})
    if not isinstance(defaults, dict) or not all(
        v is None or isinstance(v, str) or _is_str_list(v) for v in defaults.values()
    ):
        raise InvalidServiceDefinition("'default_arguments' must map names to null, a string or a list of strings")
    defn.default_arguments = dict(defaults)
    # Catch brace mistakes now rather than at the user's first start.
    check_template_syntax([*([command] if isinstance(command, str) else command), *env.keys(), *env.values()])
    return defn


def load_file(path: Path) -> ServiceDefinition:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InvalidServiceDefinition(f"cannot read the file: {e}") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidServiceDefinition(f"malformed JSON: {e}") from e
    return parse_definition(path.stem, raw)


def load_directory(directory: Path) -> tuple[dict[str, ServiceDefinition], dict[str, str]]:
    """All `*.json` definitions in `directory`: (good ones by name, errors by file name)."""
    good: dict[str, ServiceDefinition] = {}
    errors: dict[str, str] = {}
    try:
        files = sorted(p for p in directory.glob("*.json") if p.is_file())
    except OSError as e:
        log.warning("cannot list service definitions in %s: %s", directory, e)
        return good, errors
    for path in files:
        try:
            good[path.stem] = load_file(path)
        except InvalidServiceDefinition as e:
            errors[path.name] = str(e)
            log.error("skipping the malformed service definition %s: %s", path, e)
    if good:
        log.info("loaded %d service definition(s) from %s: %s", len(good), directory, ", ".join(good))
    return good, errors


def build_argv(
    defn: ServiceDefinition,
    variables: Mapping[str, Any],
    options: Mapping[str, Any],
    path: str | None = None,
) -> list[str]:
    """argv for one start: command, default + user arguments, then interpolation.

    A string command with a `shell` is shell text written by the image's author: the values put into
    it are shell-quoted. Arguments are separate argv items after it, never parsed by a shell.
    """
    command = defn.command
    if isinstance(command, str):
        if defn.shell:
            shell = shutil.which(defn.shell, path=path) or defn.shell
            return [shell, "-c", *interpolate([command], variables, quote=shlex.quote),
                    *interpolate(_arguments(defn, options), variables)]
        argv = shlex.split(command)
    else:
        argv = list(command)
    return interpolate([*argv, *_arguments(defn, options)], variables)


_NOUNS = {"arguments": "Argument", "envs": "Environment variable"}


def _user_given(defn: ServiceDefinition, options: Mapping[str, Any], key: str, allowed: list[str],
                error: type[Exception]) -> dict[str, Any]:
    """The user's `arguments`/`envs` of a start, each name checked against the definition's list."""
    given = options.get(key) or {}
    if not isinstance(given, dict):
        raise error(f"'{key}' must be an object for service {defn.name}")
    for name in given:
        if name not in allowed:
            raise error(f"{_NOUNS[key]} {name} not allowed for service {defn.name}")
    return given


def _arguments(defn: ServiceDefinition, options: Mapping[str, Any]) -> list[str]:
    """Default arguments overlaid with the user's allowed ones, flattened to argv items."""
    argv: list[str] = []
    arguments: dict[str, ArgValue] = dict(defn.default_arguments)
    for name, value in _user_given(defn, options, "arguments", defn.allowed_arguments, DisallowedArgument).items():
        if not (value is None or isinstance(value, str) or _is_str_list(value)):
            raise DisallowedArgument(f"Argument {name} must be null, a string or a list of strings")
        arguments[name] = value
    for name, value in arguments.items():
        argv.append(name)
        if isinstance(value, str):
            argv.append(value)
        elif isinstance(value, list):
            argv.extend(value)
    return argv


def build_env(
    defn: ServiceDefinition,
    variables: Mapping[str, Any],
    options: Mapping[str, Any],
    frozen: Iterable[str],
) -> dict[str, str]:
    """Extra env for one start: allowed user envs (never overriding the runner's), then `env`."""
    frozen = set(frozen)
    env: dict[str, str] = {}
    for name, value in _user_given(defn, options, "envs", defn.allowed_envs, DisallowedEnvironment).items():
        if name in frozen:
            raise DisallowedEnvironment(f"Environment variable {name} can't be overwritten")
        env[name] = str(value)
    for name, value in defn.env.items():
        name, value = interpolate([name, value], variables)
        env[name] = value
    return env
