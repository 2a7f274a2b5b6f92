"""Julia: no build step; exec `julia main.jl`. No Debian package exists: a missing toolchain is
reported on stderr with exit code 127."""
import os

from .. import BatchContext, Language, Plan

HINT = "Julia is not packaged for Debian: install it from julialang.org into /usr/local/julia"


def exec_(ctx: BatchContext) -> Plan:
    if not ctx.exists("main.jl"):
        return ctx.no_entry("main.jl")
    rt = ctx.runtime
    inside = os.path.join(rt, "bin", "julia") if os.path.isdir(rt) else rt
    return ctx.run(ctx.tool(inside, "/opt/julia/bin/julia", "julia"), "main.jl")


LANGUAGE = Language(
    name="julia", kernelspec="julia", default_runtime="/usr/local/julia",
    child_env={"JULIA_LOAD_PATH": "/opt/julia:/usr/local/julia"},
    path_prepend=("/opt/julia/bin", "/usr/local/julia/bin"),
    build=lambda ctx: ctx.skip("julia has no build process"), exec=exec_, install_hint=HINT,
)
