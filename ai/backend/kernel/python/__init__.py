"""Helpers for user code in Python kernels (`ai.backend.kernel.python.drawing`), and how they reach
every interpreter the runner starts: `library_dir()` (see docs/runtimes.md)."""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_PACKAGE = Path(__file__).resolve().parent  # .../ai/backend/kernel/python
_KERNEL_PACKAGE = _PACKAGE.parent  # .../ai/backend/kernel


def library_dir(base: str | os.PathLike[str] | None = None) -> Path:
    """A directory to put first on PYTHONPATH so that any Python (an image's own interpreter too)
    can `import ai.backend.kernel.python.drawing`.

    Why not our package root: when the runner is pip-installed, that root is the runner's whole
    site-packages, whose compiled modules must not leak into another interpreter. This directory
    holds only `ai/backend/kernel/__init__.py` and this `python` package (a symlink, a copy where
    symlinks fail), so it always follows the installed code. That `__init__.py` is written here:
    the package's version, and the real package directory added to the package's path, so that
    the runner's own interpreter still finds the rest of the package (`python -m
    ai.backend.kernel.languages...`, our kernels started through the gateway) behind this
    directory; a foreign interpreter gets nothing it can use from there but pure Python.
    """
    root = Path(base) if base is not None else Path(tempfile.gettempdir())
    tag = hashlib.sha1(str(_PACKAGE).encode()).hexdigest()[:12]
    lib = root / f"krunner-pylib-{os.getuid()}-{tag}"
    kernel = lib / "ai" / "backend" / "kernel"
    init, init_text = kernel / "__init__.py", _package_init()
    if _points_to(kernel / "python", _PACKAGE) and _has_text(init, init_text):
        return lib
    kernel.mkdir(parents=True, exist_ok=True)
    _replace_with_link(kernel / "python", _PACKAGE)
    tmp = init.with_name(f".__init__.{os.getpid()}.tmp")
    tmp.write_text(init_text)
    os.replace(tmp, init)
    return lib


def _package_init() -> str:
    from .. import __version__

    return (f'"""ai.backend.kernel for code in kernels (written by the runner: {__file__})."""\n'
            f"__version__ = {__version__!r}\n"
            f"__path__.append({str(_KERNEL_PACKAGE)!r})  # the rest of the package, behind this directory\n")


def _has_text(path: Path, text: str) -> bool:
    try:
        return not path.is_symlink() and path.read_text() == text
    except OSError:
        return False


def put_library_first(env: dict[str, str]) -> None:
    """Make `library_dir()` the first entry of `env["PYTHONPATH"]` (the runner's start-up hook of
    the Python runtimes); a failure only costs the drawing module, so it is logged, not raised."""
    try:
        lib = str(library_dir())
    except OSError as e:
        log.warning("the drawing module is not available to the runtime: %s", e)
        return
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != lib]
    env["PYTHONPATH"] = os.pathsep.join([lib, *parts])


def _points_to(link: Path, target: Path) -> bool:
    try:
        return link.is_symlink() and link.resolve() == target
    except OSError:
        return False


def _replace_with_link(link: Path, target: Path) -> None:
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp)
    elif tmp.exists() or tmp.is_symlink():
        tmp.unlink()
    try:
        tmp.symlink_to(target, target_is_directory=target.is_dir())
    except OSError:  # no symlinks here: a copy does (refreshed at every runner start)
        if target.is_dir():
            shutil.copytree(target, tmp, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(target, tmp)
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)
    os.replace(tmp, link)
