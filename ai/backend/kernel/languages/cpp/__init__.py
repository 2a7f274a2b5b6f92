"""C++: like C with `*.cpp` sources and g++."""
from .. import BatchContext, Language, Plan, make_clean
from ..c import compile_and_link, exec_


def build(ctx: BatchContext) -> Plan:
    return compile_and_link(ctx, ctx.tool(ctx.runtime, "g++", "c++"), ".cpp", "main.cpp", ())


LANGUAGE = Language(
    name="cpp", kernelspec="cpp", default_runtime="/usr/bin/g++",
    build=build, exec=exec_, clean=make_clean, install_hint="apt-get install g++",
)
