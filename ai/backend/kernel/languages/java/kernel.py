"""Jupyter kernel for Java: each cell is compiled with javac and run (`python -m ...java.kernel -f CONN`)."""
from __future__ import annotations

import re
from pathlib import Path

from ..kernelbase.common import launch
from ..kernelbase.compiled import CompiledKernel
from ..kernelbase.wrapping import indent, looks_like_function, partition

JAVA_KEYWORDS = ("abstract assert boolean break byte case catch char class const continue default do double "
                 "else enum extends final finally float for if implements import instanceof int interface "
                 "long native new package private protected public return short static super switch "
                 "synchronized this throw throws transient try var void volatile while record true false "
                 "null").split()
JAVA_BUILTINS = ("System out println print printf String Integer Long Double Math List ArrayList Map HashMap "
                 "Set HashSet Arrays Collections Scanner StringBuilder Object Exception RuntimeException "
                 "length size add get put").split()
TYPE_RE = re.compile(r"^((public|private|protected|abstract|final|static|sealed)\s+)*(class|interface|enum|record)\b")
MEMBER_RE = re.compile(r"^((public|private|protected|static|final|synchronized)\s+)+")
MAIN_RE = re.compile(r"\bstatic\s+void\s+main\s*\(")
# JVM flags that cut start-up time of short programs (no JIT tiers beyond C1, one GC thread)
FAST_JVM = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto")


def java_is_declaration(unit: str) -> bool:
    return unit.startswith("import ") or bool(TYPE_RE.match(unit)) or looks_like_function(unit)


class JavaKernel(CompiledKernel):
    implementation = "krunner-bridge-java"
    language_info = {"name": "java", "mimetype": "text/x-java", "file_extension": ".java",
                     "codemirror_mode": "text/x-java", "pygments_lexer": "java"}
    banner = "Java (javac + java), one program per cell"
    keywords = tuple(JAVA_KEYWORDS)
    builtins = tuple(JAVA_BUILTINS)
    source_name = "Main.java"
    toolchain = ("javac", "java")
    install_hint = "Install it with: apt-get install openjdk-17-jdk-headless"

    def wrap(self, code: str) -> str:
        if MAIN_RE.search(code):
            return code
        top, body = partition(code, java_is_declaration)
        imports = [u for u in top if u.lstrip().startswith("import ")]
        members = []
        for unit in top:
            if unit in imports:
                continue
            stripped = unit.lstrip()
            if "static" not in stripped.split("(")[0].split("{")[0]:
                # statement cells call helpers from static main: make methods and classes static
                unit = unit[: len(unit) - len(stripped)] + "static " + stripped
            members.append(unit)
        head = "import java.util.*;\nimport java.io.*;\n" + "".join(u.strip() + "\n" for u in imports)
        return (head + "public class Main {\n" + indent(members)
                + "    public static void main(String[] args) throws Exception {\n"
                + indent(body, " " * 8) + "    }\n}\n")

    def source_for(self, program: str) -> str:
        m = re.search(r"\bpublic\s+(?:final\s+)?class\s+(\w+)", program)
        return f"{m.group(1)}.java" if m else self.source_name

    def build(self, src: Path, workdir: Path) -> list[str]:
        self.compile(["javac", *(f"-J{flag}" for flag in FAST_JVM), "-encoding", "UTF-8",
                      "-d", str(workdir), src.name], workdir)
        program = src.read_text()
        main_class = src.stem
        m = re.search(r"(?:class|record|enum|interface)\s+(\w+)[^{]*\{[^{}]*?(?:\{[^{}]*\}[^{}]*?)*?static\s+void\s+main", program, re.S)
        if m and not re.search(rf"\bpublic\s+(?:final\s+)?class\s+{main_class}\b", program):
            main_class = m.group(1)
        pkg = re.search(r"^\s*package\s+([\w.]+)\s*;", program, re.M)
        if pkg:
            main_class = f"{pkg.group(1)}.{main_class}"
        return ["java", *FAST_JVM, "-cp", str(workdir), main_class]


if __name__ == "__main__":
    launch(JavaKernel)
