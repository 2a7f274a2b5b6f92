"""The php language: runtime and environment (batch heuristics land with batch mode)."""
from .. import Language

LANGUAGE = Language(name="php", kernelspec="php", default_runtime="/usr/bin/php")
