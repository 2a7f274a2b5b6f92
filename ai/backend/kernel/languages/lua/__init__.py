"""The lua language: runtime and environment (batch heuristics land with batch mode)."""
from .. import Language

LANGUAGE = Language(name="lua", kernelspec="lua", default_runtime="/usr/bin/lua5.4")
