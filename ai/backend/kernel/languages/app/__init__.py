"""The app language: a Python runtime serving apps/services only; batch mode is a no-op."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import BatchContext, Language, Plan

if TYPE_CHECKING:
    from ...runner import Runner


def unsupported(ctx: BatchContext) -> Plan:
    return ctx.skip("batch-mode execution is not supported")


async def setup(runner: Runner) -> None:
    """Its Python kernel may run under an image's interpreter: give it the drawing module too."""
    from ...python import put_library_first

    put_library_first(runner.child_env)


LANGUAGE = Language(
    name="app", kernelspec="python", default_runtime="/opt/backend.ai/bin/python", log_prefix="app-kernel",
    build=unsupported, exec=unsupported, setup=setup,
)
