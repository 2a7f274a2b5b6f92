"""The `octave` kernelspec renders figures only after cells that created one (a flag file touched
by Octave's DefaultFigureCreateFcn): plain cells skip the render round trip, figure cells don't."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests import kernellib

pytestmark = pytest.mark.skipif(shutil.which("octave") is None, reason="octave is not installed")


@pytest.fixture(scope="module")
def kc() -> Iterator[Any]:
    pytest.importorskip("octave_kernel")
    with kernellib.running_kernel("octave") as client:
        yield client


def run(kc: Any, code: str) -> tuple[dict[str, Any], str]:
    return kernellib.run_cell(kc, code, timeout=60)


def test_plain_cells_run_and_report_errors(kc: Any) -> None:
    content, out = run(kc, "x = 1 + 1;\ndisp(x)")
    assert content["status"] == "ok" and out.strip() == "2"
    content, _ = run(kc, "error('boom')")
    assert content["status"] == "error" and "boom" in content["evalue"]


def test_the_figure_hook_is_installed(kc: Any) -> None:
    content, out = run(kc, "disp(class(get(0, 'DefaultFigureCreateFcn')))")
    assert content["status"] == "ok" and out.strip() == "function_handle"


def test_a_cell_creating_a_figure_gets_it_rendered(kc: Any) -> None:
    content, out = run(kc, "disp(numel(available_graphics_toolkits()))")
    if out.strip() == "0":
        pytest.skip("Octave has no graphics toolkit here (gnuplot-nox: .ci/install.d/35-octave-plots.sh)")
    run(kc, "h = figure('visible', 'off'); plot(1:3);")
    # the render step closes every figure it renders: none may be left open after that cell
    content, out = run(kc, "disp(numel(get(0, 'children')))")
    assert content["status"] == "ok" and out.strip() == "0"
