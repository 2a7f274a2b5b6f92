"""The octave language: runtime and environment (batch heuristics land with batch mode)."""
from .. import Language

LANGUAGE = Language(name="octave", kernelspec="octave", default_runtime="/usr/bin/octave-cli")
