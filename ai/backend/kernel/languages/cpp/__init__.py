"""The cpp language: runtime and environment (batch heuristics land with batch mode)."""
from .. import Language

LANGUAGE = Language(name="cpp", kernelspec="cpp", default_runtime="/usr/bin/g++")
