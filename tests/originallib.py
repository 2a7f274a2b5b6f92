"""The original runner's own code (backend.ai-kernel 23.9.10 from PyPI, never committed), as a
reference for compatibility tests: its `decode_commands` and its drawing module.

The wheel is fetched with pip into ~REAL_USER/.cache/krunner-bridge/original (or
$KRUNNER_ORIGINAL_WHEEL_DIR) and checked against its sha256. Only
`ai/backend/kernel/python/drawing/*.py` is used, loaded as the package `_original_kernel.drawing`
with a one-line stand-in for its `..types.MediaRecord` (a pair), so our `ai.backend.kernel` stays
untouched.
"""
from __future__ import annotations

import collections
import hashlib
import importlib.util
import os
import pwd
import subprocess
import sys
import types
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

PACKAGE, VERSION = "backend.ai-kernel", "23.9.10"
WHEEL_NAME = f"backend.ai_kernel-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "5ae41033fad6d2989c225d1a4d98510ac7eb18a47ab869a016ce2010cd406801"
MEMBER_PREFIX = "ai/backend/kernel/python/drawing/"
_REAL_HOME = Path(pwd.getpwuid(os.getuid()).pw_dir)


def wheel_dir() -> Path:
    env = os.environ.get("KRUNNER_ORIGINAL_WHEEL_DIR")
    return Path(env) if env else _REAL_HOME / ".cache" / "krunner-bridge" / "original"


def ensure_wheel() -> Path:
    """The original's wheel (downloaded once). RuntimeError when PyPI cannot be reached."""
    directory = wheel_dir()
    wheel = directory / WHEEL_NAME
    if not (wheel.is_file() and hashlib.sha256(wheel.read_bytes()).hexdigest() == WHEEL_SHA256):
        directory.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               f"{PACKAGE}=={VERSION}", "-d", str(directory)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not wheel.is_file():
            raise RuntimeError(f"cannot obtain {WHEEL_NAME}: {' '.join(cmd)}\n{proc.stderr}")
        if hashlib.sha256(wheel.read_bytes()).hexdigest() != WHEEL_SHA256:
            raise RuntimeError(f"{wheel} does not have the expected sha256")
    return wheel


def _extracted() -> Path:
    target = wheel_dir() / f"drawing-{VERSION}"
    if not (target / "encoding.py").is_file():
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(ensure_wheel()) as zf:
            for name in zf.namelist():
                if name.startswith(MEMBER_PREFIX) and name.endswith(".py"):
                    (target / name[len(MEMBER_PREFIX):]).write_bytes(zf.read(name))
    return target


def original_drawing() -> types.ModuleType:
    """The original's `drawing` package (its Canvas calls `builtins._sorna_emit`)."""
    if "_original_kernel.drawing" in sys.modules:
        return sys.modules["_original_kernel.drawing"]
    root = types.ModuleType("_original_kernel")
    root.__path__ = []  # type: ignore[attr-defined]
    stand_in = types.ModuleType("_original_kernel.types")
    stand_in.MediaRecord = collections.namedtuple("MediaRecord", "type data")  # type: ignore[attr-defined]
    sys.modules["_original_kernel"] = root
    sys.modules["_original_kernel.types"] = stand_in
    spec = importlib.util.spec_from_file_location(
        "_original_kernel.drawing", _extracted() / "__init__.py",
        submodule_search_locations=[str(_extracted())])
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def decode_commands() -> Callable[[str], Any]:
    """The original's `decode_commands(data)` (base64 -> msgpack -> lists)."""
    original_drawing()
    return sys.modules["_original_kernel.drawing.encoding"].decode_commands  # type: ignore[no-any-return]


def original_git_graph(repo: Path) -> list[dict[str, Any]]:
    """What the original git runner's `do_show` sends for `%show graph REPO` (its own code, taken
    from the wheel's git/__init__.py and run with a stand-in for its output socket)."""
    import argparse
    import ast
    import json

    with zipfile.ZipFile(ensure_wheel()) as zf:
        source = zf.read("ai/backend/kernel/git/__init__.py").decode()
    tree = ast.parse(source)
    runner = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Runner")
    do_show = next(n for n in runner.body if isinstance(n, ast.FunctionDef) and n.name == "do_show")
    module = ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                              and getattr(n, "level", 0) == 0] + [do_show], type_ignores=[])
    namespace: dict[str, Any] = {}
    exec(compile(module, "original-git-runner", "exec"), namespace)
    frames: list[list[bytes]] = []
    fake_self = types.SimpleNamespace(outsock=types.SimpleNamespace(send_multipart=frames.append),
                                      term=types.SimpleNamespace(pid=os.getpid()))
    cwd = os.getcwd()
    try:
        namespace["do_show"](fake_self, argparse.Namespace(target="graph", path=str(repo)))
    finally:
        os.chdir(cwd)
    (kind, payload), = frames
    assert kind == b"media", frames
    media = json.loads(payload)
    assert media["type"] == "application/vnd.sorna.gitgraph"
    return media["data"]  # type: ignore[no-any-return]
