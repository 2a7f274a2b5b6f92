"""Jupyter kernel for JavaScript on Node.js: a long-running vm eval loop (kernel_driver.js) in a pty
(`python -m ...nodejs.kernel -f CONN`). Busy loops are interruptible (vm breakOnSigint)."""
from __future__ import annotations

import json
from pathlib import Path

from ..kernelbase.common import launch
from ..kernelbase.marker import MarkerReplKernel

DRIVER = Path(__file__).with_name("kernel_driver.js")
JS_KEYWORDS = ("async await break case catch class const continue debugger default delete do else export "
               "extends false finally for function if import in instanceof let new null return static "
               "super switch this throw true try typeof undefined var void while with yield").split()


class NodeKernel(MarkerReplKernel):
    implementation = "krunner-bridge-nodejs"
    language_info = {"name": "javascript", "mimetype": "application/javascript", "file_extension": ".js",
                     "codemirror_mode": "javascript", "pygments_lexer": "javascript"}
    banner = "JavaScript (Node.js)"
    keywords = tuple(JS_KEYWORDS)
    install_hint = "Install it with: apt-get install nodejs"
    completion_extra_chars = "$."

    def spawn_argv(self) -> list[str]:
        return ["node", str(DRIVER), self.token]

    def cell_command(self, code: str) -> str:
        return json.dumps({"op": "run", "path": str(self.cell_file(code, ".js"))})

    def completion_candidates(self, token: str, code: str) -> set[str]:
        names = set(self.query(json.dumps({"op": "complete", "prefix": token})).split())
        if "." not in token:
            names |= set(self.keywords)
        return names

    def is_complete_status(self, code: str) -> str:
        if self.start_error:
            return "unknown"
        path = self.cell_file(code, ".check.js")
        status = self.query(json.dumps({"op": "check", "path": str(path)})).strip()
        return status if status in {"complete", "incomplete", "invalid"} else "unknown"


if __name__ == "__main__":
    launch(NodeKernel)
