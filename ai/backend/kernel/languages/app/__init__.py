"""The app language: a Python runtime serving apps/services only; batch mode is a no-op."""
from __future__ import annotations

from .. import BatchContext, Language, Plan
from ..python import python_kernel_argv, with_drawing_library


def unsupported(ctx: BatchContext) -> Plan:
    return ctx.skip("batch-mode execution is not supported")


async def setup(ctx: BatchContext) -> dict[str, str]:
    """Its Python kernel may run under an image's interpreter: give it the drawing module too."""
    return with_drawing_library(ctx.env, {})


LANGUAGE = Language(
    name="app", kernelspec="python", default_runtime="/opt/backend.ai/bin/python", log_prefix="app-kernel",
    build=unsupported, exec=unsupported, setup=setup, kernel_argv=python_kernel_argv,
)
