"""In-kernel helpers for user code (the `backend.ai-kernel-helper` API, docs/languages.md, "Helpers").

    from ai.backend.helpers import install
    install("tqdm")

Messages go to the user's console (`sys.stdout`): that is this function's interface, which is why
it writes there instead of logging.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import re
import site
import subprocess
import sys

__all__ = ["install"]

_BARE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_version(pkgname: str) -> str | None:
    """Version of the installed distribution named `pkgname` (PEP 503 name match), else None."""
    if not _BARE_NAME.match(pkgname):
        return None  # a requirement with specifiers, a path or a URL: let pip decide
    wanted = _normalize(pkgname)
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and _normalize(name) == wanted:
            return dist.version
    return None


def _user_site() -> str | None:
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE is not False else None
    return user_site or None


def install(pkgname: str, force_install: bool = False) -> None:
    """pip-install `pkgname` into the user site unless it is installed already (`force_install` reinstalls).

    Raises RuntimeError when the user site-packages are unavailable (e.g. in a virtualenv) and not forcing.
    """
    if not force_install:
        version = _installed_version(pkgname)
        if version is not None:
            sys.stdout.write(f"'{pkgname}' is already installed (version: {version}).\n")
            sys.stdout.flush()
            return
    user_site = _user_site()
    if user_site is None and not force_install:
        raise RuntimeError("the user site-packages directory is not available in this Python environment")
    argv = [sys.executable, "-m", "pip", "install", "--user"]
    if force_install:
        argv.append("-I")
    argv.append(pkgname)
    # Relay pip's output through sys.stdout so it shows in notebooks, not only on the kernel's fd 1.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
    sys.stdout.flush()
    returncode = proc.wait()
    if returncode != 0:
        sys.stdout.write(f"pip exited with code {returncode}\n")
    if user_site is not None and user_site not in sys.path:
        site.addsitedir(user_site)
    importlib.invalidate_caches()
