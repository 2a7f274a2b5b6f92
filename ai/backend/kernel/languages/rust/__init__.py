"""Rust: `cargo build` for a Cargo project, else `rustc -o main main.rs`; exec runs the built binary."""
from __future__ import annotations

import os
import pwd
import tomllib
from collections.abc import Mapping
from pathlib import Path

from .. import BatchContext, Language, Plan

HINT = "install rustup (https://rustup.rs) or apt-get install rustc cargo"


def rustup_env(env: Mapping[str, str]) -> dict[str, str]:
    """RUSTUP_HOME, CARGO_HOME and cargo's bin dir on PATH, for an `env` whose HOME may be the work
    dir: rustup keeps its toolchains under the user's real home (`~/.rustup`, `~/.cargo`, from the
    password database), unless RUSTUP_HOME/CARGO_HOME say otherwise. Returns only what to add."""
    try:
        home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        home = Path(os.path.expanduser("~"))
    added: dict[str, str] = {}
    for var, default in (("RUSTUP_HOME", home / ".rustup"), ("CARGO_HOME", home / ".cargo")):
        if not env.get(var) and default.is_dir():
            added[var] = str(default)
    cargo_home = env.get("CARGO_HOME") or added.get("CARGO_HOME")
    if cargo_home:
        cargo_bin = str(Path(cargo_home) / "bin")
        path = env.get("PATH", "")
        if os.path.isdir(cargo_bin) and cargo_bin not in path.split(os.pathsep):
            added["PATH"] = f"{path}{os.pathsep}{cargo_bin}" if path else cargo_bin
    return added


async def setup(ctx: BatchContext) -> dict[str, str]:
    """Start-up hook: the children find rustup's toolchain although their HOME is the work dir."""
    return rustup_env(ctx.env)


def build(ctx: BatchContext) -> Plan:
    rustc = ctx.tool(ctx.runtime, "rustc")
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
    build=build, exec=exec_, setup=setup, install_hint=HINT,
)
