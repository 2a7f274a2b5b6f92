"""vendor.h2o: images with H2O Driverless AI. Queries run in the image's DAI Python (a kernel that
also starts `run-dai.sh`); batch mode is Python's, under that interpreter (docs/runtimes.md)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ... import Language
from ...python import build, exec_

if TYPE_CHECKING:
    from ....runner import Runner

DAI_HOME = "/opt/h2oai/dai"
DAI_PYTHON = f"{DAI_HOME}/python/bin/python"


async def setup(runner: Runner) -> None:
    """An explicit RUNTIME_PATH is the DAI interpreter the kernel runs queries with."""
    if getattr(runner.app, "runtime_path_arg", None):
        runner.child_env.setdefault("KRUNNER_H2O_PYTHON", runner.runtime_path)


LANGUAGE = Language(
    name="vendor.h2o", kernelspec="vendor.h2o", default_runtime=DAI_PYTHON, log_prefix="h2o-kernel",
    build=build, exec=exec_, setup=setup,
    install_hint="an image with H2O Driverless AI in /opt/h2oai/dai (or set KRUNNER_H2O_DAI_HOME)",
)
