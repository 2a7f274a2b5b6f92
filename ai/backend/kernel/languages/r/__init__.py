"""R: exec `Rscript main.R` (Rscript next to the R runtime, else from PATH)."""
from .. import BatchContext, Language, Plan


def exec_(ctx: BatchContext) -> Plan:
    entry = ctx.exists("main.R", "main.r")
    if not entry:
        return ctx.no_entry("main.R")
    try:
        rscript = ctx.sibling(ctx.tool(ctx.runtime, "R"), "Rscript")
    except Exception:
        rscript = ctx.tool("Rscript")
    return ctx.run(rscript, entry)


LANGUAGE = Language(
    name="r", kernelspec="r", default_runtime="/usr/bin/R",
    exec=exec_, install_hint="apt-get install r-base-core",
)
