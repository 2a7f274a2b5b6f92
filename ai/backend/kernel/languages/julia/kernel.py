"""Jupyter kernel for Julia: a long-running eval loop (kernel_driver.jl) in a pty
(`python -m ...julia.kernel -f CONN`).

Debian bookworm packages no Julia and every other registry downloads it at run time, so on our
machines the kernel starts and answers every execute with a clear "julia is not installed" error.
"""
from __future__ import annotations

from pathlib import Path

from ..kernelbase.common import launch
from ..kernelbase.marker import MarkerReplKernel

DRIVER = Path(__file__).with_name("kernel_driver.jl")
JULIA_KEYWORDS = ("baremodule begin break catch const continue do else elseif end export false finally for "
                  "function global if import let local macro module quote return struct true try using "
                  "while mutable abstract primitive type where").split()


class JuliaKernel(MarkerReplKernel):
    implementation = "krunner-bridge-julia"
    language_info = {"name": "julia", "mimetype": "application/julia", "file_extension": ".jl",
                     "codemirror_mode": "julia", "pygments_lexer": "julia"}
    banner = "Julia"
    keywords = tuple(JULIA_KEYWORDS)
    install_hint = ("Julia is not packaged for Debian bookworm; install an official build from "
                    "https://julialang.org/downloads/ and put `julia` on PATH.")
    bracket_syntax = None  # `end`-terminated blocks: brackets alone cannot tell

    def spawn_argv(self) -> list[str]:
        return ["julia", "--banner=no", "--color=no", "--startup-file=no", str(DRIVER), self.token]

    def cell_command(self, code: str) -> str:
        return f"run {self.cell_file(code, '.jl')}"

    def completion_candidates(self, token: str, code: str) -> set[str]:
        names = set(self.query(f"complete {token}").split()) if not self.start_error else set()
        return names | super().completion_candidates(token, code)


if __name__ == "__main__":
    launch(JuliaKernel)
