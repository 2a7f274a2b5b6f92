"""The c language: runtime and environment (batch heuristics land with batch mode)."""
from .. import Language

LANGUAGE = Language(name="c", kernelspec="c", default_runtime="/usr/bin/gcc")
