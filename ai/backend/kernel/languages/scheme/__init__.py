"""The scheme language: runtime and environment (batch heuristics land with batch mode)."""
from .. import Language

LANGUAGE = Language(name="scheme", kernelspec="scheme", default_runtime="/usr/bin/mit-scheme")
