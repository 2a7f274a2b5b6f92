"""Language registry: what each `LANG` of the agent contract runs on and how.

One package per language (`languages/<name>/`): its `__init__.py` declares a `LANGUAGE` (runtime,
environment, batch heuristics), its optional `kernel.py` is the language's own Jupyter kernel.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

# LANG on the command line -> package holding its definition (aliases share one package).
_PACKAGES: dict[str, str] = {
    "python": "python",
    "app": "app",
    "c": "c",
    "cpp": "cpp",
    "golang": "golang",
    "rust": "rust",
    "java": "java",
    "nodejs": "nodejs",
    "lua": "lua",
    "php": "php",
    "r": "r",
    "julia": "julia",
    "octave": "octave",
    "haskell": "haskell",
    "scheme": "scheme",
    "git": "shell",
    "shell": "shell",
}


@dataclass(frozen=True)
class Language:
    """How one language is run: by its Jupyter kernel (query mode) and by subprocesses (batch)."""

    name: str
    kernelspec: str | None  # exact kernelspec name used for query mode
    default_runtime: str  # RUNTIME_PATH when the agent gives none
    log_prefix: str = ""
    child_env: dict[str, str] = field(default_factory=dict)
    path_prepend: tuple[str, ...] = ()

    @property
    def prefix(self) -> str:
        return self.log_prefix or f"{self.name}-kernel"


def names() -> list[str]:
    """Every LANG the command line accepts."""
    return list(_PACKAGES)


def get_language(name: str) -> Language:
    """The `Language` for a LANG of the agent contract; KeyError for an unknown one."""
    package = _PACKAGES[name]
    module = importlib.import_module(f"{__name__}.{package}")
    language: Language = module.LANGUAGE
    return language
