"""The shape of the package (docs/architecture.md): dependencies point one way and modules stay small.

The import graph is read with `ast` from every module under `ai/`, counting every import wherever
it is written (module level, inside functions, under `if TYPE_CHECKING`), so a cycle cannot hide
behind a function-level import.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "ai"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the package that `name` imports, resolved to the most specific known module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from pkg import submodule` imports the submodule; `from mod import name` the module
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_the_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    # __main__ imports the runner inside main(): that edge must be in the graph
    assert "ai.backend.kernel.runner" in graph["ai.backend.kernel.__main__"]
    assert "ai.backend.kernel.procfacts" in graph["ai.backend.kernel.languages.kernelbase.common"]


def test_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_find_cycle_reports_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_main_and_runner_know_the_runner() -> None:
    users = {name for name, deps in import_graph().items() if "ai.backend.kernel.runner" in deps}
    assert users == {"ai.backend.kernel.__main__"}


@pytest.mark.parametrize("leaf", ["protocol", "ops", "kernels", "environment", "procfacts", "logsetup", "options"])
def test_leaves_import_no_room_above_them(leaf: str) -> None:
    """The leaves of docs/architecture.md import only other leaves (and nothing of the rooms)."""
    leaves = {f"ai.backend.kernel.{n}" for n in ("protocol", "ops", "kernels", "environment", "procfacts",
                                                 "logsetup", "options")} | {"ai.backend.kernel"}
    deps = import_graph()[f"ai.backend.kernel.{leaf}"]
    assert deps <= leaves, deps - leaves


def test_subsystems_do_not_import_app_or_runner() -> None:
    graph = import_graph()
    above = {"ai.backend.kernel.app", "ai.backend.kernel.runner", "ai.backend.kernel.__main__"}
    for name, deps in graph.items():
        if name in above:
            continue
        assert not deps & above, f"{name} imports {deps & above}"


def test_no_module_over_the_size_limit() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in all_modules().items()}
    too_big = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not too_big, f"modules over {MAX_LINES} lines: {too_big}"


def test_no_test_helpers_in_the_product() -> None:
    """Test and benchmark clients live in tests/ and bench/; the product imports no test package."""
    for name, path in all_modules().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("tests", "pytest", "websocket")), (name, node.module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith(("tests", "pytest", "websocket")), (name, alias.name)
