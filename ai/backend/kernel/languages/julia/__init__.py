"""The julia language: runtime and environment (batch heuristics land with batch mode)."""
from .. import Language

LANGUAGE = Language(name="julia", kernelspec="julia", default_runtime="/usr/local/julia")
