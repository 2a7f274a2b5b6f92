"""C: build compiles every `*.c` then links `./main` (gcc, not g++ as the original); exec `./main`."""
from .. import BatchContext, Language, Plan, make_clean, run_binary

SUFFIX, ENTRY = ".c", "main.c"


def compile_and_link(ctx: BatchContext, compiler: str, suffix: str, entry: str, libs: tuple[str, ...]) -> Plan:
    """One `-c` per source (objects next to their sources, so same-named files don't collide),
    stop at the first failure, then link `./main`."""
    if not ctx.exists(entry):
        return ctx.no_entry(entry)
    sources = ctx.find(suffix)
    objects = [src[: -len(suffix)] + ".o" for src in sources]
    steps = [[compiler, "-c", src, "-Wall", "-o", obj] for src, obj in zip(sources, objects)]
    steps.append([compiler, *objects, "-Wall", "-o", "./main", *libs])
    return ctx.run_all(steps)


def build(ctx: BatchContext) -> Plan:
    return compile_and_link(ctx, ctx.tool(ctx.runtime, "gcc", "cc"), SUFFIX, ENTRY, ("-lm",))


def exec_(ctx: BatchContext) -> Plan:
    return run_binary(ctx, "main", "a.out")


LANGUAGE = Language(
    name="c", kernelspec="c", default_runtime="/usr/bin/gcc",
    build=build, exec=exec_, clean=make_clean, install_hint="apt-get install gcc",
)
