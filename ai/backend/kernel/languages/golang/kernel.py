"""Jupyter kernel for Go: each cell is built with `go build` and run (`python -m ...golang.kernel -f CONN`)."""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..kernelbase.common import launch
from ..kernelbase.compiled import CompiledKernel
from ..kernelbase.wrapping import Program, partition

GO_KEYWORDS = ("break case chan const continue default defer else fallthrough for func go goto if import "
               "interface map package range return select struct switch type var true false nil iota").split()
GO_BUILTINS = ("append cap close complex copy delete imag len make new panic print println real recover "
               "bool byte rune string error int int8 int16 int32 int64 uint uint8 uint16 uint32 uint64 "
               "float32 float64 fmt Println Printf Sprintf Scan Scanln Sprint strings strconv os math").split()
# packages a statement cell may use without importing them: added when `pkg.` appears in the cell
AUTO_IMPORTS = {"fmt": "fmt", "os": "os", "strings": "strings", "strconv": "strconv", "math": "math",
                "time": "time", "sort": "sort", "bufio": "bufio", "errors": "errors", "bytes": "bytes",
                "unicode": "unicode", "rand": "math/rand", "io": "io", "sync": "sync"}
DECL_RE = re.compile(r"^(import|func\s+(\([^)]*\)\s*)?[A-Za-z_]\w*\s*[\[(]|type|var|const)\b")


class GoKernel(CompiledKernel):
    implementation = "krunner-bridge-go"
    language_info = {"name": "go", "mimetype": "text/x-go", "file_extension": ".go",
                     "codemirror_mode": "go", "pygments_lexer": "go"}
    banner = "Go (go build), one program per cell"
    keywords = tuple(GO_KEYWORDS)
    builtins = tuple(GO_BUILTINS)
    source_name = "main.go"
    toolchain = ("go",)
    install_hint = "Install it with: apt-get install golang-go"

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("GOCACHE", str(Path(env.get("HOME", "/tmp")) / ".cache" / "go-build"))
        env.setdefault("GOPATH", str(Path(env.get("HOME", "/tmp")) / "go"))
        env.setdefault("GO111MODULE", "off")  # single-file programs, std only: no module lookups
        env.setdefault("GOFLAGS", "-buildvcs=false")
        return env

    def wrap(self, code: str) -> str | Program:
        if re.search(r"^\s*package\s+\w+", code, re.M):
            return code
        top, body = partition(code, lambda u: bool(DECL_RE.match(u)), newline_terminates=True)
        imported = set(re.findall(r'"([\w/]+)"', "".join(u for u in top if u.lstrip().startswith("import"))))
        used = {path for name, path in AUTO_IMPORTS.items() if re.search(rf"(?<![\w.]){name}\.", code)}
        extra = sorted(used - imported)
        program = Program().add("package main")
        for path in extra:
            program.add(f'import "{path}"')
        return program.units(top).add("func main() {").units(body, "    ").add("}")

    def build(self, src: Path, workdir: Path) -> list[str]:
        exe = workdir / "main"
        self.compile(["go", "build", "-o", str(exe), src.name], workdir)
        return [str(exe)]

    def is_complete_status(self, code: str) -> str:
        return super().is_complete_status(code.replace("`", '"'))


if __name__ == "__main__":
    launch(GoKernel)
