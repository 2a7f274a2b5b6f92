"""Load the REAL `ai.backend.agent.kernel` (backend.ai-agent wheel) under Python 3.11.

Why: tests must drive the runner with the agent's own code-runner class, but the wheel needs
Python 3.13 and half of `ai.backend.common`. We fetch the wheel from PyPI (never committed),
extract only `ai/backend/agent/kernel.py` (+ its package `__init__.py`/`VERSION`), apply the
minimal mechanical source transforms listed in TRANSFORMS, and import it under its real name
`ai.backend.agent.kernel`, with small honest stand-ins (tests/agentlib/standins/) for the
unrelated modules it imports. The protocol logic itself is the wheel's code, byte for byte.

`ai` and `ai.backend` are namespace packages shared with our own `ai.backend.kernel`: we only add
`ai.backend.agent`, `ai.backend.common` and `ai.backend.logging` entries to `sys.modules`, each a
package whose `__path__` points at the extracted/stand-in directory, so `ai.backend.kernel`
imports are untouched.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.machinery
import importlib.util
import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import types
import warnings
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

AGENT_PACKAGE = "backend.ai-agent"
AGENT_VERSION = "26.9.6"
WHEEL_NAME = f"backend_ai_agent-{AGENT_VERSION}-py3-none-any.whl"
# sha256 of the PyPI wheel (pip also checks the index hash): a different file is never used silently.
WHEEL_SHA256 = "66592d387ed07988dbcfdeba05db1973310239c94778fe302c2cbd43029222c0"
# Members of the wheel we extract; nothing else of the wheel is used.
WHEEL_MEMBERS = ("ai/backend/agent/kernel.py", "ai/backend/agent/__init__.py", "ai/backend/agent/VERSION")

STANDINS = Path(__file__).resolve().parent / "standins"

# The real home, resolved once at import time: tests point HOME at temp dirs, the cache must not.
try:
    _REAL_HOME = Path(pwd.getpwuid(os.getuid()).pw_dir)
except KeyError:  # pragma: no cover - uid without a passwd entry
    _REAL_HOME = Path(os.path.expanduser("~"))
DEFAULT_WHEEL_DIR = _REAL_HOME / ".cache" / "krunner-bridge" / "agent"

TRANSFORMS = """\
Source transforms applied to kernel.py at load time (only when running on Python < 3.12):
1. `typing.override` (3.12+) is removed from the `from typing import (...)` list and imported from
   `typing_extensions` instead (same decorator; typing_extensions is a dependency of IPython).
   Line numbers are preserved (the extra import is appended to the line closing that import).
Nothing else is changed. The sync `with timeout(...)` of async_timeout 4.x (what the wheel pins)
emits a DeprecationWarning on every get_next_result(); it is filtered for that module only.
"""


def wheel_dir() -> Path:
    """Where the wheel is cached: $KRUNNER_AGENT_WHEEL_DIR or ~REAL_USER/.cache/krunner-bridge/agent."""
    env = os.environ.get("KRUNNER_AGENT_WHEEL_DIR")
    return Path(env) if env else DEFAULT_WHEEL_DIR


def ensure_wheel(directory: Path | None = None) -> Path:
    """Return the cached wheel, downloading it from PyPI with pip if it is not there yet."""
    directory = directory or wheel_dir()
    wheel = directory / WHEEL_NAME
    if wheel.is_file() and zipfile.is_zipfile(wheel):
        return wheel
    directory.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
        "--python-version", "3.13", f"{AGENT_PACKAGE}=={AGENT_VERSION}", "-d", str(directory),
    ]
    log.info("downloading %s==%s into %s", AGENT_PACKAGE, AGENT_VERSION, directory)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not wheel.is_file():
        raise RuntimeError(
            f"cannot obtain {WHEEL_NAME} (run .ci/install.d/10-agent-client.sh or set "
            f"KRUNNER_AGENT_WHEEL_DIR): {' '.join(cmd)} -> {proc.returncode}\n{proc.stderr}"
        )
    return wheel


def transform_source(source: str) -> str:
    """Apply the mechanical 3.11 transforms described in TRANSFORMS (no-op on 3.12+)."""
    if sys.version_info >= (3, 12):
        return source
    tree = ast.parse(source)
    nodes = [
        n for n in tree.body
        if isinstance(n, ast.ImportFrom) and n.module == "typing"
        and any(a.name == "override" and a.asname is None for a in n.names)
    ]
    if not nodes:
        return source
    if len(nodes) != 1:
        raise RuntimeError("unexpected kernel.py layout: several `from typing import override`")
    node = nodes[0]
    lines = source.splitlines(keepends=True)
    first, last = node.lineno - 1, node.end_lineno - 1
    removed = 0
    for i in range(first, last + 1):
        stripped = lines[i].strip()
        if stripped in ("override,", "override"):
            lines[i] = "\n"  # keep line numbering identical to the wheel
            removed += 1
    if removed != 1:
        raise RuntimeError("unexpected kernel.py layout: `override` not on a line of its own")
    end = lines[last].rstrip("\n")
    lines[last] = end + "; from typing_extensions import override\n"
    new = "".join(lines)
    ast.parse(new)  # must still be valid
    return new


def _extracted_dir(wheel: Path) -> Path:
    """Extract the needed members once per wheel content (atomic rename; safe for parallel runs)."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise RuntimeError(f"{wheel}: sha256 {digest} != expected {WHEEL_SHA256}; delete it to re-download")
    digest = digest[:16]
    transform_tag = hashlib.sha256(TRANSFORMS.encode() + sys.version.encode()).hexdigest()[:8]
    target = wheel.parent / f"src-{AGENT_VERSION}-{digest}-{transform_tag}"
    if (target / "ai/backend/agent/kernel.py").is_file():
        return target
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=wheel.parent))
    try:
        with zipfile.ZipFile(wheel) as zf:
            for member in WHEEL_MEMBERS:
                dest = tmp / member
                dest.parent.mkdir(parents=True, exist_ok=True)
                data = zf.read(member).decode("utf-8")
                if member.endswith("/kernel.py"):
                    (tmp / "ai/backend/agent/kernel.py.orig").write_text(data)
                    data = transform_source(data)
                dest.write_text(data)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _package(name: str, paths: list[str]) -> types.ModuleType:
    """Register (or return) a package module `name` whose submodules are searched in `paths`."""
    existing = sys.modules.get(name)
    if existing is not None:
        existing_paths = [str(p) for p in getattr(existing, "__path__", [])]
        if existing_paths != paths:
            raise RuntimeError(f"{name} is already imported from {existing_paths}, not {paths}")
        return existing
    init = Path(paths[0]) / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=paths)
    else:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = paths
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        if spec.loader is not None:
            spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def _ensure_namespace(name: str) -> None:
    """Make sure `ai` / `ai.backend` exist (normally our own namespace packages)."""
    try:
        importlib.import_module(name)
    except ImportError:
        _package(name, [])


_loaded: types.ModuleType | None = None


def load_agent_kernel() -> types.ModuleType:
    """Import and return the real `ai.backend.agent.kernel` module (idempotent)."""
    global _loaded
    if _loaded is not None:
        return _loaded
    extracted = _extracted_dir(ensure_wheel())
    _ensure_namespace("ai")
    _ensure_namespace("ai.backend")
    _package("ai.backend.common", [str(STANDINS / "ai_backend_common")])
    _package("ai.backend.logging", [str(STANDINS / "ai_backend_logging")])
    # The agent package: the wheel's __init__/kernel.py first, then our stand-in errors/types/resources.
    _package(
        "ai.backend.agent",
        [str(extracted / "ai/backend/agent"), str(STANDINS / "ai_backend_agent")],
    )
    warnings.filterwarnings(
        "ignore", message=r"with timeout\(\) is deprecated", category=DeprecationWarning,
    )
    _loaded = importlib.import_module("ai.backend.agent.kernel")
    if not _loaded.__file__ or not _loaded.__file__.startswith(str(extracted)):
        raise RuntimeError(f"ai.backend.agent.kernel came from {_loaded.__file__}, not the wheel")
    return _loaded
