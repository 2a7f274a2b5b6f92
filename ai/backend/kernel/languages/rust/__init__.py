"""Rust: `cargo build` for a Cargo project, else `rustc -o main main.rs`; exec runs the built binary."""
from __future__ import annotations

import os
import tomllib

from .. import BatchContext, Language, Plan

HINT = "install rustup (https://rustup.rs) or apt-get install rustc cargo"


def build(ctx: BatchContext) -> Plan:
    rustc = ctx.tool(ctx.runtime, "rustc", "/root/.cargo/bin/rustc")
    if ctx.exists("Cargo.toml"):
        return ctx.run(ctx.sibling(rustc, "cargo"), "build")
    if ctx.exists("main.rs"):
        return ctx.run(rustc, "-o", "main", "main.rs")
    return ctx.no_entry("Cargo.toml or main.rs")


def cargo_binaries(ctx: BatchContext) -> list[str]:
    """Binary names declared by Cargo.toml (`[[bin]]` names, else the package name)."""
    try:
        manifest = tomllib.loads((ctx.work_dir / "Cargo.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return []
    bins = [b["name"] for b in manifest.get("bin", []) if isinstance(b, dict) and "name" in b]
    name = manifest.get("package", {}).get("name")
    return bins or ([name] if isinstance(name, str) else [])


def exec_(ctx: BatchContext) -> Plan:
    for profile in ("debug", "release"):
        target = ctx.work_dir / "target" / profile
        named = [target / n for n in cargo_binaries(ctx)]
        scanned = sorted(target.iterdir()) if target.is_dir() else []
        for path in [*named, *scanned]:
            if path.is_file() and os.access(path, os.X_OK):
                return ctx.run(str(path))
    if (ctx.work_dir / "main").is_file():
        return ctx.run("./main")
    return ctx.no_entry("a built binary (target/debug, target/release or ./main)")


LANGUAGE = Language(
    name="rust", kernelspec="rust", default_runtime="/usr/bin/rustc",
    build=build, exec=exec_, install_hint=HINT,
)
