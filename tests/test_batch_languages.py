"""Per-language batch heuristics as data: every LANG resolves, and the original's "sic" bugs
(docs/batch.md#fixed-against-the-original) are fixed. Pure planning, no toolchain needed."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ai.backend.kernel.languages import BatchContext, Plan, ToolMissing, get_language, names

FAKE_TOOLS = ("gcc", "g++", "go", "rustc", "cargo", "java", "javac", "ghc", "lua5.4", "node", "php",
              "octave-cli", "R", "Rscript", "mit-scheme", "bash", "make", "python3")


@pytest.fixture
def tools(tmp_path: Path) -> Path:
    """A PATH holding a dummy executable for every tool, so plans never depend on the machine."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in FAKE_TOOLS:
        (bin_dir / tool).write_text("#!/bin/sh\n")
        (bin_dir / tool).chmod(0o755)
    return bin_dir


def plan(lang: str, op: str, work: Path, tools: Path, files: dict[str, str], runtime: str = "/nonexistent/x") -> Plan:
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    language = get_language(lang)
    ctx = BatchContext(lang, work, runtime, {"PATH": str(tools)})
    return getattr(language, op)(ctx)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "w").mkdir()
    return tmp_path / "w"


def test_every_lang_resolves_with_heuristics() -> None:
    assert set(names()) >= {"python", "app", "c", "cpp", "golang", "rust", "java", "nodejs", "lua", "php",
                            "r", "julia", "octave", "haskell", "scheme", "git", "shell"}
    for name in names():
        language = get_language(name)
        assert language.default_runtime and callable(language.exec) and callable(language.build)


def test_c_compiles_with_gcc_each_file_then_links(work: Path, tools: Path) -> None:
    p = plan("c", "build", work, tools, {"main.c": "", "sub/util.c": ""})
    assert [s[0] for s in p.steps] == [str(tools / "gcc")] * 3
    assert p.steps[0][1:3] == ("-c", "main.c") and p.steps[1][1:3] == ("-c", "sub/util.c")
    assert p.steps[-1][1:3] == ("main.o", "sub/util.o") and "./main" in p.steps[-1]


def test_cpp_uses_gxx(work: Path, tools: Path) -> None:
    p = plan("cpp", "build", work, tools, {"main.cpp": ""})
    assert p.steps[0][0] == str(tools / "g++")


def test_go_has_no_empty_argument(work: Path, tools: Path) -> None:
    p = plan("golang", "build", work, tools, {"main.go": "", "b.go": "", "b_test.go": ""})
    assert p.steps == ((str(tools / "go"), "build", "-o", "main", "b.go", "main.go"),)
    p = plan("golang", "build", work, tools, {"go.mod": ""})
    assert p.steps[0][-1] == "."


def test_java_sources_are_separate_args_without_removed_jvm_flags(work: Path, tools: Path) -> None:
    p = plan("java", "build", work, tools, {"Main.java": "", "pkg/Util.java": ""})
    assert p.steps == ((str(tools / "javac"), "-d", ".", "Main.java", "pkg/Util.java"),)
    (work / "Main.class").write_text("")
    assert plan("java", "exec", work, tools, {}).steps == ((str(tools / "java"), "Main"),)


def test_octave_checks_main_m(work: Path, tools: Path) -> None:
    assert plan("octave", "exec", work, tools, {"main.js": ""}).exit_code == 127
    assert plan("octave", "exec", work, tools, {"main.m": ""}).steps == ((str(tools / "octave-cli"), "main.m"),)


def test_scheme_runs_mit_scheme(work: Path, tools: Path) -> None:
    p = plan("scheme", "exec", work, tools, {"main.scm": ""})
    assert p.steps[0][0] == str(tools / "mit-scheme") and 'load "main.scm"' in p.steps[0][-1]


def test_node_runtime_path_is_right(work: Path, tools: Path) -> None:
    assert get_language("nodejs").default_runtime == "/usr/bin/node"
    assert plan("nodejs", "exec", work, tools, {"main.js": ""}).steps == ((str(tools / "node"), "main.js"),)


def test_rust_cargo_and_binary_lookup(work: Path, tools: Path) -> None:
    assert plan("rust", "build", work, tools, {"Cargo.toml": '[package]\nname = "demo"\n'}).steps[0][1:] == ("build",)
    (work / "target" / "debug").mkdir(parents=True)
    binary = work / "target" / "debug" / "demo"
    binary.write_text("")
    binary.chmod(0o755)
    assert plan("rust", "exec", work, tools, {}).steps == ((str(binary),),)


def test_r_uses_rscript_and_python_main(work: Path, tools: Path) -> None:
    assert plan("r", "exec", work, tools, {"main.R": ""}).steps == ((str(tools / "Rscript"), "main.R"),)
    assert plan("python", "exec", work, tools, {"main.py": ""}).steps == ((str(tools / "python3"), "main.py"),)
    assert plan("python", "build", work, tools, {}).exit_code == 0


def test_clean_runs_make_clean_for_c(work: Path, tools: Path) -> None:
    assert plan("c", "clean", work, tools, {}).steps == ()
    assert plan("c", "clean", work, tools, {"Makefile": ""}).steps == ((str(tools / "make"), "clean"),)


def test_missing_toolchain_raises_tool_missing(work: Path) -> None:
    (work / "main.jl").write_text("")
    ctx = BatchContext("julia", work, "/nonexistent/julia", {"PATH": str(work)})
    with pytest.raises(ToolMissing):
        get_language("julia").exec(ctx)


def test_absolute_runtime_is_used_when_it_exists(work: Path, tools: Path) -> None:
    lua = work / "mylua"
    lua.write_text("")
    lua.chmod(0o755)
    assert plan("lua", "exec", work, tools, {"main.lua": ""}, runtime=str(lua)).steps == ((str(lua), "main.lua"),)
    assert os.access(lua, os.X_OK)
