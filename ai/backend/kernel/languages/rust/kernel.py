"""Jupyter kernel for Rust: each cell is compiled with rustc (std only) and run (`python -m ...rust.kernel -f CONN`)."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from . import rustup_env
from ..kernelbase.common import launch
from ..kernelbase.compiled import CompiledKernel
from ..kernelbase.wrapping import Program, partition

RUST_KEYWORDS = ("as break const continue crate else enum extern false fn for if impl in let loop match mod "
                 "move mut pub ref return self Self static struct super trait true type unsafe use where "
                 "while async await dyn").split()
RUST_BUILTINS = ("println print eprintln eprint format vec panic assert assert_eq String Vec Option Some "
                 "None Result Ok Err Box HashMap HashSet std io i32 i64 u8 u32 u64 usize f64 bool char "
                 "str to_string iter collect unwrap expect len push").split()
DECL_RE = re.compile(r"^(#!?\[.*?\]\s*)*(pub(\([^)]*\))?\s+)?(use|fn|struct|enum|impl|trait|mod|const|static|type|extern|macro_rules!|unsafe\s+fn|async\s+fn)\b", re.S)


class RustKernel(CompiledKernel):
    implementation = "krunner-bridge-rust"
    language_info = {"name": "rust", "mimetype": "text/rust", "file_extension": ".rs",
                     "codemirror_mode": "rust", "pygments_lexer": "rust"}
    banner = "Rust (rustc, std only), one program per cell"
    keywords = tuple(RUST_KEYWORDS)
    builtins = tuple(RUST_BUILTINS)
    source_name = "main.rs"
    toolchain = ("rustc",)
    install_hint = "Install it with rustup (https://rustup.rs) or: apt-get install rustc"

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(rustup_env(env))
        return env

    def wrap(self, code: str) -> str | Program:
        if re.search(r"\bfn\s+main\s*\(", code):
            return code
        top, body = partition(code, lambda u: bool(DECL_RE.match(u)), attribute_prefix="#[")
        return Program().add("#![allow(unused)]").units(top).add("fn main() {").units(body, "    ").add("}")

    def link_flags(self) -> list[str]:
        """Link std dynamically (halves rustc's time per cell), found through an rpath."""
        if not hasattr(self, "_link_flags"):
            proc = subprocess.run(["rustc", "--print", "target-libdir"], capture_output=True, text=True,
                                  env=self.child_env())
            libdir = proc.stdout.strip()
            self._link_flags = (["-C", "prefer-dynamic", "-C", f"link-arg=-Wl,-rpath,{libdir}"]
                                if proc.returncode == 0 and libdir else [])
        return self._link_flags

    def build(self, src: Path, workdir: Path) -> list[str]:
        exe = workdir / "main"
        self.compile(["rustc", "--edition", "2021", "-C", "opt-level=0", "-C", "debuginfo=0",
                      *self.link_flags(), "-o", str(exe), src.name], workdir)
        return [str(exe)]


if __name__ == "__main__":
    launch(RustKernel)
