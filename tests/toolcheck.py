"""One rule for tests that need a toolchain, a kernel or a Python module (docs/testing.md):
on a developer machine a missing one skips the test with its name; under CI (`CI=true`) it FAILS
and names it, so a CI machine missing gcc cannot pass by skipping. Only Julia may skip under CI
(it is packaged nowhere CI can reach); `ALWAYS_SKIPPABLE` lists it with the reason.
"""
from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

ALWAYS_SKIPPABLE = {"julia": "Julia is packaged nowhere CI can install from (no Debian or PyPI package)"}
INSTALL_HINT = ".ci/install.d installs it"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str, why: str) -> None:
    """Skip (developer machine) or fail (CI) because `what` is not available."""
    if in_ci() and what not in ALWAYS_SKIPPABLE:
        pytest.fail(f"CI: {what} is missing ({why}); {INSTALL_HINT}", pytrace=False)
    pytest.skip(f"{what} is missing ({ALWAYS_SKIPPABLE.get(what, why)})")


def missing_tools(*tools: str) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def require_tool(*tools: str) -> None:
    """Every executable in `tools` is on PATH, else skip/fail naming the first missing one."""
    for tool in missing_tools(*tools):
        missing(tool, "not on PATH")


def require_module(*modules: str) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            missing(module, "Python module not importable")
