"""The children's environment and the config-dir files the agent writes (docs/configuration.md#config-dir-files)."""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_COPIED_FROM_RUNNER = ("LD_LIBRARY_PATH", "LD_PRELOAD", "SSH_AUTH_SOCK", "SSH_AGENT_PID")


def in_agent_container(config_dir: Path) -> bool:
    """Was this runner started by a Backend.AI agent? The agent writes `resource.txt` into every
    kernel's config dir (docker and kubernetes alike); a developer's config dir has none.

    It decides the network defaults: all interfaces inside an agent's container (the agent reaches
    the ports through the container's network), loopback anywhere else (see docs/security.md).
    """
    return (config_dir / "resource.txt").is_file()


def read_environ_txt(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines; a missing file is fine, a malformed line stops reading (as the original)."""
    result: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return result
    except (OSError, UnicodeDecodeError):
        log.exception("Reading %s failed!", path)
        return result
    for line in lines:
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key:
            log.error("Reading %s failed! (malformed line %r; the rest is ignored)", path, line[:80])
            break
        result[key] = value
    return result


def read_intrinsic_ports(path: Path) -> dict[str, int]:
    """`intrinsic-ports.json`: {"replin": N, "replout": N, "sshd": N, "ttyd": N}; bad entries are logged."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        log.error("ignoring %s: %s", path, e)
        return {}
    if not isinstance(data, dict):
        log.error("ignoring %s: not a JSON object", path)
        return {}
    ports: dict[str, int] = {}
    for key, value in data.items():
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
            ports[str(key)] = value
        else:
            log.error("ignoring %s entry %r=%r: not a port number", path, key, value)
    return ports


def promote_path(path_value: str, entries: Iterable[str]) -> str:
    """Move each entry to the front of a PATH string (later entries end up first), without duplicates."""
    parts = [p for p in path_value.split(":") if p]
    for entry in entries:
        parts = [entry] + [p for p in parts if p != entry]
    return ":".join(parts)


def build_child_env(work_dir: Path, extra: dict[str, str], path_prepend: Iterable[str] = ()) -> dict[str, str]:
    """The environment every child (kernel, batch program, service) gets."""
    env = dict(os.environ)
    env.update({"LANG": "C.UTF-8", "HOME": str(work_dir), "TERM": "xterm"})
    for name in _COPIED_FROM_RUNNER:
        env.setdefault(name, "")
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("SHELL", "/bin/ash" if os.path.isfile("/bin/ash") else "/bin/bash")
    env.update(extra)
    promoted = [p for p in ("/usr/local/cuda/bin", "/usr/local/nvidia/bin") if os.path.isdir(p)]
    if os.path.isdir("/home/linuxbrew/.linuxbrew"):
        promoted.append("/home/linuxbrew/.linuxbrew/bin")
    promoted.append(str(work_dir / ".local" / "bin"))
    promoted.extend(reversed(tuple(path_prepend)))
    env["PATH"] = promote_path(env["PATH"], promoted)
    return env
