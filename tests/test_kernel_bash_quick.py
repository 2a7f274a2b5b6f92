"""The `shell` kernelspec's quick start (bash spawned before ipykernel's imports, no pexpect send
pause): what bash_kernel set up must still be there, and a restarted bash must be set up alike."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import kernellib


@pytest.fixture(scope="module")
def kc() -> Iterator[Any]:
    with kernellib.running_kernel("shell") as client:
        yield client


def run(kc: Any, code: str) -> tuple[dict[str, Any], str]:
    return kernellib.run_cell(kc, code, timeout=30)


def test_kernel_info_names_our_shell_kernel(kc: Any) -> None:
    reply = kc.kernel_info(reply=True, timeout=30)
    assert reply["content"]["implementation"] == "krunner-bridge-shell"
    assert reply["content"]["language_info"]["name"] == "bash"


def test_bash_kernel_setup_is_in_place(kc: Any) -> None:
    content, out = run(kc, "type -t display; echo $PAGER; bind -v | grep -c 'enable-bracketed-paste off'")
    assert content["status"] == "ok"
    assert out.split() == ["function", "cat", "1"]


def test_multi_line_cell_output_and_exit_status(kc: Any) -> None:
    content, out = run(kc, "for i in 1 2 3; do\n  echo line$i\ndone")
    assert content["status"] == "ok" and out == "line1\nline2\nline3\n"
    content, _ = run(kc, "(exit 3)")
    assert content["status"] == "error" and content["evalue"] == "exit status 3"


def test_sigpipe_is_default_in_the_early_bash(kc: Any) -> None:
    content, out = run(kc, "yes | head -n 2")
    assert content["status"] == "ok" and out.split() == ["y", "y"]


def test_bash_restarted_after_exit_is_set_up_too(kc: Any) -> None:
    run(kc, "exit")
    content, out = run(kc, "echo again; type -t display")
    assert content["status"] == "ok" and out.split() == ["again", "function"]
