"""Go: `go build -o main` (the module when there is a go.mod, else the top-level files; no empty
argument as the original); exec `./main`. GOPATH is the work dir."""
from __future__ import annotations

from .. import BatchContext, Language, Plan, run_binary


def build(ctx: BatchContext) -> Plan:
    if not ctx.exists("main.go"):
        return ctx.no_entry("main.go")
    go = ctx.tool(ctx.runtime, "go", "/usr/local/go/bin/go")
    if ctx.exists("go.mod"):
        return ctx.run(go, "build", "-o", "main", ".")
    files = [f for f in ctx.find(".go") if "/" not in f and not f.endswith("_test.go")]
    return ctx.run(go, "build", "-o", "main", *files)


def exec_(ctx: BatchContext) -> Plan:
    return run_binary(ctx, "main")


async def setup(ctx: BatchContext) -> dict[str, str]:
    """GOPATH is the work dir (`/home/work` in a container), as in the original."""
    return {"GOPATH": str(ctx.work_dir)}


LANGUAGE = Language(
    name="golang", kernelspec="golang", default_runtime="/usr/bin/go", log_prefix="go-kernel",
    child_env={"GOPATH": "/home/work"},
    path_prepend=("/home/work/bin", "/usr/local/go/bin", "/go/bin"),
    build=build, exec=exec_, setup=setup, install_hint="apt-get install golang-go",
)
