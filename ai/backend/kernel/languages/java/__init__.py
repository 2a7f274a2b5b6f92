"""The java language: runtime and environment (batch heuristics land with batch mode)."""
from .. import Language

LANGUAGE = Language(name="java", kernelspec="java", default_runtime="/usr/bin/java")
