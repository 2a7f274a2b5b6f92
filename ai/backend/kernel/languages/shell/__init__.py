"""Shell (and its `git` alias): exec runs `main.sh` with the runtime shell (bash)."""
from .. import Language, interpret

LANGUAGE = Language(
    name="shell", kernelspec="shell", default_runtime="/bin/bash", log_prefix="shell-kernel",
    exec=interpret("bash", "sh", entry="main.sh"), install_hint="apt-get install bash",
)
