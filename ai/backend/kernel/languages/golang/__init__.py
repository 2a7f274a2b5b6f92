"""The golang language: runtime and environment (batch heuristics land with batch mode)."""
from .. import Language

LANGUAGE = Language(name="golang", kernelspec="golang", default_runtime="/usr/bin/go", log_prefix="go-kernel", child_env={"GOPATH": "/home/work"})
