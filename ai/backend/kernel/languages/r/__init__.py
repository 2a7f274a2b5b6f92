"""The r language: runtime and environment (batch heuristics land with batch mode)."""
from .. import Language

LANGUAGE = Language(name="r", kernelspec="r", default_runtime="/usr/bin/R")
