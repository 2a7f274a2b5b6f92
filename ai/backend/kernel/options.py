"""The one way an option reads an environment variable: `from_env(trait, "NAME")`.

Every option is a traitlets trait declared once, on the Configurable that uses it; the trait is
its flag (through an alias), its config-file key and its `--help-all` entry. `from_env` makes the
trait's default come from an environment variable when that is set, and names the variable in the
help text, so no module reads `os.environ` for an option on its own. Precedence, as in Jupyter:
command line > config file > environment variable > built-in default.
See docs/architecture.md#where-is-option-x-declared.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

from traitlets import Container, List, TraitError, TraitType, Undefined

log = logging.getLogger(__name__)

T = TypeVar("T", bound=TraitType)


def from_env(trait: T, env: str, *, fallback: Callable[[Any], Any] | None = None, shown: str | None = None) -> T:
    """Let `trait`'s default come from the environment variable `env`.

    Unset: `fallback(owner)` when given (a default that depends on other options), else the
    trait's own default. Lists are comma-separated (`""` is the empty list). A value that does not
    parse is logged and ignored. `shown` is what `--help-all` prints as the default.
    """
    own_default = trait.default
    if not isinstance(trait, Container) and trait.default_value is not Undefined:
        static = trait.default_value
        trait.default_value = Undefined  # a static default would be copied without asking us
        own_default = lambda obj=None: static  # noqa: E731
        shown = shown if shown is not None else repr(static)

    def default(obj: Any = None) -> Any:
        value = os.environ.get(env)
        if value is not None:
            try:
                if isinstance(trait, List):
                    return [item.strip() for item in value.split(",") if item.strip()]
                return trait.from_string(value)
            except (TraitError, ValueError) as e:
                log.warning("ignoring %s=%r: %s", env, value, e)
        return fallback(obj) if fallback is not None else own_default(obj)

    trait.default = default  # type: ignore[method-assign]
    if shown is not None:
        trait.default_value_repr = lambda: shown  # type: ignore[method-assign]
    trait.help = f"{trait.help} [env: {env}]"
    trait.metadata["env"] = env
    return trait


def debug_flag(app_class: str) -> dict[str, tuple[dict[str, dict[str, bool]], str]]:
    """The `--debug` flag every command of the package has: sets `<app_class>.debug`."""
    return {"debug": ({app_class: {"debug": True}}, "log at DEBUG level")}
