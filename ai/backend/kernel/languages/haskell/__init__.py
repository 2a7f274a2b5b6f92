"""Haskell: `ghc --make -o main main.hs` (ghc follows the imports); exec `./main`."""
from .. import BatchContext, Language, Plan, run_binary


def build(ctx: BatchContext) -> Plan:
    entry = ctx.exists("main.hs", "Main.hs")
    if not entry:
        return ctx.no_entry("main.hs")
    return ctx.run(ctx.tool(ctx.runtime, "ghc"), "--make", "-o", "main", entry)


def exec_(ctx: BatchContext) -> Plan:
    return run_binary(ctx, "main")


LANGUAGE = Language(
    name="haskell", kernelspec="haskell", default_runtime="/usr/bin/ghc",
    path_prepend=("/home/work/.cabal/bin",),
    build=build, exec=exec_, install_hint="apt-get install ghc",
)
