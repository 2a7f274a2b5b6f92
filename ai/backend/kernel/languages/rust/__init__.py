"""The rust language: runtime and environment (batch heuristics land with batch mode)."""
from .. import Language

LANGUAGE = Language(name="rust", kernelspec="rust", default_runtime="/usr/bin/rustc")
