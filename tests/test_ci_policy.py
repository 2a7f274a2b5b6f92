"""CI cannot pass by skipping (tests/toolcheck.py, docs/testing.md): under CI=true a test whose tool
is missing fails and names it, on a developer machine it skips; only Julia may skip under CI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = '''
import pytest
from tests.toolcheck import require_tool

def test_needs_gcc():
    require_tool("gcc")

def test_needs_julia():
    require_tool("julia")

def test_old_style_skip():
    pytest.skip("rustc is not installed")
'''


def _run_probe(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    empty_bin = tmp_path / "bin"  # a PATH without any toolchain: every tool is "missing"
    empty_bin.mkdir(exist_ok=True)
    env = {**os.environ, "PATH": str(empty_bin), "PYTHONPATH": str(REPO)}
    env.pop("CI", None)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "--rootdir", str(tmp_path), str(probe)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def test_missing_tools_fail_under_ci_and_name_the_tool(tmp_path: Path) -> None:
    out = _run_probe(tmp_path, ci=True)
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "FAILED" in text and "test_needs_gcc" in text and "gcc is missing" in text, text
    assert "test_old_style_skip" in text and "rustc is not installed" in text and "2 failed" in text, text
    assert "SKIPPED" in text and "Julia is packaged nowhere" in text, text  # the one allowed skip


def test_missing_tools_skip_on_a_developer_machine(tmp_path: Path) -> None:
    out = _run_probe(tmp_path, ci=False)
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "3 skipped" in text, text
