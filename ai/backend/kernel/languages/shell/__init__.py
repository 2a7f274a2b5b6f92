"""The shell language: runtime and environment (batch heuristics land with batch mode)."""
from .. import Language

LANGUAGE = Language(name="shell", kernelspec="shell", default_runtime="/bin/bash", log_prefix="shell-kernel")
