"""The app language: runtime and environment (batch heuristics land with batch mode)."""
from .. import Language

LANGUAGE = Language(name="app", kernelspec="python", default_runtime="/opt/backend.ai/bin/python", log_prefix="app-kernel")
