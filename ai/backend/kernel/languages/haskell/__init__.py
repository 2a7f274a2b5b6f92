"""The haskell language: runtime and environment (batch heuristics land with batch mode)."""
from .. import Language

LANGUAGE = Language(name="haskell", kernelspec="haskell", default_runtime="/usr/bin/ghc")
