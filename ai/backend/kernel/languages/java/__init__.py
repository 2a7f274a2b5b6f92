"""Java: `javac -d .` over every source (separate arguments, no JVM flags removed from modern JDKs);
exec `java main.Main` or `java Main`."""
import glob

from .. import BatchContext, Language, Plan

JVM_BINS = tuple(sorted(glob.glob("/usr/lib/jvm/java-*/bin")))
DEFAULT_RUNTIME = next((f"{d}/java" for d in JVM_BINS), "/usr/bin/java")


def java(ctx: BatchContext) -> str:
    return ctx.tool(ctx.runtime, "java")


def build(ctx: BatchContext) -> Plan:
    sources = ctx.find(".java")
    if not sources:
        return ctx.no_entry("Java sources (*.java)")
    return ctx.run(ctx.sibling(java(ctx), "javac"), "-d", ".", *sources)


def exec_(ctx: BatchContext) -> Plan:
    if (ctx.work_dir / "main" / "Main.class").is_file():
        return ctx.run(java(ctx), "main.Main")
    if (ctx.work_dir / "Main.class").is_file():
        return ctx.run(java(ctx), "Main")
    return ctx.no_entry("Main.class or main/Main.class (build it first)")


LANGUAGE = Language(
    name="java", kernelspec="java", default_runtime=DEFAULT_RUNTIME, path_prepend=JVM_BINS,
    build=build, exec=exec_, install_hint="apt-get install openjdk-17-jdk-headless",
)
