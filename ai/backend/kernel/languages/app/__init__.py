"""The app language: a Python runtime serving apps/services only; batch mode is a no-op."""
from .. import BatchContext, Language, Plan
from ..python import python_kernel_argv


def unsupported(ctx: BatchContext) -> Plan:
    return ctx.skip("batch-mode execution is not supported")


LANGUAGE = Language(
    name="app", kernelspec="python", default_runtime="/opt/backend.ai/bin/python", log_prefix="app-kernel",
    build=unsupported, exec=unsupported, kernel_argv=python_kernel_argv,
)
