"""vendor.h2o: images with H2O Driverless AI. Queries run in the image's DAI Python (a kernel that
also starts `run-dai.sh`); batch mode is Python's, under that interpreter (docs/runtimes.md)."""
from __future__ import annotations

from ... import BatchContext, Language
from ...python import build, exec_

DAI_HOME = "/opt/h2oai/dai"
DAI_PYTHON = f"{DAI_HOME}/python/bin/python"


async def setup(ctx: BatchContext) -> dict[str, str]:
    """A RUNTIME_PATH other than the default is the DAI interpreter the kernel runs queries with."""
    if ctx.runtime != DAI_PYTHON and "KRUNNER_H2O_PYTHON" not in ctx.env:
        return {"KRUNNER_H2O_PYTHON": ctx.runtime}
    return {}


LANGUAGE = Language(
    name="vendor.h2o", kernelspec="vendor.h2o", default_runtime=DAI_PYTHON, log_prefix="h2o-kernel",
    build=build, exec=exec_, setup=setup,
    install_hint="an image with H2O Driverless AI in /opt/h2oai/dai (or set KRUNNER_H2O_DAI_HOME)",
)
