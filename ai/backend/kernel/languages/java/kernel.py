"""Jupyter kernel for Java: each cell is compiled with javac and run (`python -m ...java.kernel -f CONN`)."""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from ..kernelbase.common import launch
from ..kernelbase.common import load_libc, default_sigint
from ..kernelbase.compiled import CompiledKernel, CompileError
from ..kernelbase.wrapping import Program, looks_like_function, map_lines, partition

JAVA_KEYWORDS = ("abstract assert boolean break byte case catch char class const continue default do double "
                 "else enum extends final finally float for if implements import instanceof int interface "
                 "long native new package private protected public return short static super switch "
                 "synchronized this throw throws transient try var void volatile while record true false "
                 "null").split()
JAVA_BUILTINS = ("System out println print printf String Integer Long Double Math List ArrayList Map HashMap "
                 "Set HashSet Arrays Collections Scanner StringBuilder Object Exception RuntimeException "
                 "length size add get put").split()
# statement cells: System.out is flushed before every read of System.in, so a prompt written
# with print() reaches the front-end before the program waits for input
FLUSH_BEFORE_READ = """    static {
        final InputStream krbIn = System.in;
        System.setIn(new FilterInputStream(krbIn) {
            @Override public int read() throws IOException { System.out.flush(); return super.read(); }
            @Override public int read(byte[] b, int o, int n) throws IOException {
                System.out.flush();
                return super.read(b, o, n);
            }
        });
    }
"""
COMPILE_SERVER = Path(__file__).with_name("kernel_compile_server.java")
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

    def wrap(self, code: str) -> str | Program:
        if MAIN_RE.search(code):
            return code
        top, body = partition(code, java_is_declaration)
        imports = [u for u in top if u.lstrip().startswith("import ")]
        program = Program().add("import java.util.*;\nimport java.io.*;").units(imports)
        program.add("public class Main {")
        for unit in top:
            if unit in imports:
                continue
            stripped = unit.lstrip()
            text = str(unit)
            if "static" not in stripped.split("(")[0].split("{")[0]:
                # statement cells call helpers from static main: make methods and classes static
                text = text[: len(text) - len(stripped)] + "static " + stripped
            program.add(text, unit.line, "    ")
        program.add("    public static void main(String[] args) throws Exception {")
        program.units(body, " " * 8).add("    }")
        # the stdin helper goes last, so it does not shift the cell's lines
        return program.add(FLUSH_BEFORE_READ).add("}")

    def source_for(self, program: str) -> str:
        m = re.search(r"\bpublic\s+(?:final\s+)?class\s+(\w+)", program)
        return f"{m.group(1)}.java" if m else self.source_name

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.server: subprocess.Popen | None = None
        self.server_lock = threading.Lock()
        if shutil.which("java"):
            # from this (main) thread: the child dies with the thread that started it
            # (PR_SET_PDEATHSIG); Popen returns at once, the JVM warms up meanwhile
            self.start_server()

    def start_server(self) -> None:
        """Start the warm compiler (kernel_compile_server.java, run by the source launcher)."""
        with self.server_lock:
            if self.server is not None and self.server.poll() is None:
                return
            load_libc()
            self.server = subprocess.Popen(
                ["java", *FAST_JVM, str(COMPILE_SERVER)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, encoding="utf-8",
                preexec_fn=default_sigint, start_new_session=True, env=self.child_env())

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.kill()
            self.server.wait()
            self.server = None

    def compile_warm(self, src: Path, workdir: Path) -> bool:
        """Compile through the warm compiler; False when it is not usable (then javac runs)."""
        with self.server_lock:
            server = self.server
            if server is None or server.poll() is not None or server.stdin is None or server.stdout is None:
                return False
            try:
                server.stdin.write(f"{workdir}\t{src}\n")
                server.stdin.flush()
                lines = []
                while True:
                    line = server.stdout.readline()
                    if not line:
                        return False
                    if line.startswith("KRB-JAVAC "):
                        break
                    lines.append(line)
            except KeyboardInterrupt:
                self.server.kill()  # it is mid-compile: drop it, a new one starts
                self.server.wait()
                self.server = None
                raise
            except OSError:
                return False
        text = map_lines("".join(lines).replace(f"{workdir}/", ""), src.name, self.origin)
        if line.strip() != "KRB-JAVAC 1":
            rows = [ln for ln in text.splitlines() if ln.strip()]
            summary = next((ln for ln in rows if "error" in ln), rows[0] if rows else "compilation failed")
            raise CompileError(summary.strip(), text)
        if text.strip():
            self.stream("stderr", text)
        return True

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        self.stop_server()
        return await super().do_shutdown(restart)

    def build(self, src: Path, workdir: Path) -> list[str]:
        if self.server is None:
            self.start_server()
        if not self.compile_warm(src, workdir):
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
