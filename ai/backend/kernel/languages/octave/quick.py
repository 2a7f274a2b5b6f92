"""The Octave kernel of the `octave` kernelspec: `kernel.OctaveKernel` without a second Octave
round trip per cell (`python -m ...octave.quick -f CONN`).

After every cell octave_kernel runs `_make_figures(...)` in Octave (plus a temp dir, a glob and
an rmtree in Python) to render the figures the cell left open; `_make_figures` closes each figure
it renders. That call is half of a trivial cell's time. Here Octave's root default
`DefaultFigureCreateFcn` touches a flag file whenever a figure is created, and the figures are
rendered only after a cell during which the flag appeared: with the inline backend no figure
outlives its cell, so a cell that created none has none to render (docs/performance.md).
A user who sets their own DefaultFigureCreateFcn replaces the hook; `%plot` backends other than
inline keep upstream's behaviour (a `drawnow` after every cell).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..kernelbase.common import launch
from .kernel import OctaveKernel


class QuickOctaveKernel(OctaveKernel):
    implementation = "krunner-bridge-octave"

    def do_execute_direct(self, code: str, silent: bool = False) -> Any:
        engine = self.octave_engine
        if not getattr(engine, "_krb_figure_flag", None):
            self._watch_figure_creation(engine)
        return super().do_execute_direct(code, silent)

    def _watch_figure_creation(self, engine: Any) -> None:
        if not engine._has_startup:
            engine._startup()
        flag = os.path.join(engine.tmp_dir, "figure-created").replace(os.path.sep, "/")
        answer = engine.eval(
            f"set(0, 'DefaultFigureCreateFcn', @(h, e) fclose(fopen('{flag}', 'w')));", silent=True)
        if answer and "error" in answer:  # keep upstream's check after every cell
            self.log.warning("cannot watch figure creation: %s", answer)
            engine._krb_figure_flag = "-"
            return
        engine._krb_figure_flag = flag
        engine.make_figures = _only_after_new_figures(engine, engine.make_figures, flag)


def _only_after_new_figures(engine: Any, make_figures: Callable[..., Any], flag: str) -> Callable[..., Any]:
    def maybe_make_figures(plot_dir: str | None = None) -> Any:
        backend = str((engine._plot_settings or {}).get("backend", "inline"))
        if plot_dir or not backend.startswith("inline"):
            return make_figures(plot_dir)
        try:
            os.unlink(flag)
        except FileNotFoundError:
            return None  # no figure was created: nothing to render
        return make_figures(plot_dir)

    return maybe_make_figures


if __name__ == "__main__":
    launch(QuickOctaveKernel)
