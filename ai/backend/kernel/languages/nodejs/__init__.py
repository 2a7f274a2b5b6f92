"""The nodejs language: runtime and environment (batch heuristics land with batch mode)."""
from .. import Language

LANGUAGE = Language(name="nodejs", kernelspec="nodejs", default_runtime="/usr/bin/node")
