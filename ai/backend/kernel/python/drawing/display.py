"""Publishing a drawing: a Jupyter display_data with the original's media type and an SVG.

Inside a Jupyter kernel (ipykernel) the bundle goes out with IPython's `display(raw=True)`; the
runner hands the agent the `application/x-sorna-drawing` item, front-ends render the SVG. Outside
a kernel, a `builtins._sorna_emit` hook (the original's) is used when someone defines one;
otherwise the SVG is written to a file and its path is printed, so nothing is lost.
"""
from __future__ import annotations

import builtins
import os
import sys
import tempfile
from typing import Any, Protocol

from .encoding import encode_commands
from .svg import render_svg



class Canvas(Protocol):
    """What publishing needs from a canvas (a protocol, so this module does not import canvas.py)."""

    width: int
    height: int
    _id: int
    _next_objid: int

MEDIA_TYPE = "application/x-sorna-drawing"


def bundle_for(canvas: Canvas, pending: list[tuple[Any, ...]], everything: list[tuple[Any, ...]]) -> dict[str, str]:
    return {
        MEDIA_TYPE: encode_commands(pending),
        "image/svg+xml": render_svg(everything, canvas._id),
        "text/plain": f"<Canvas {canvas.width}x{canvas.height}: {canvas._next_objid} objects>",
    }


def _ipython_display() -> Any:
    if "IPython" not in sys.modules:  # never import IPython just to find out
        return None
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    shell = get_ipython()
    return display if shell is not None and getattr(shell, "kernel", None) is not None else None


def publish(canvas: Canvas, pending: list[tuple[Any, ...]], everything: list[tuple[Any, ...]]) -> None:
    bundle = bundle_for(canvas, pending, everything)
    display = _ipython_display()
    if display is not None:
        display(bundle, raw=True)
        return
    emit = getattr(builtins, "_sorna_emit", None)
    if emit is not None:
        emit({"type": MEDIA_TYPE, "data": bundle[MEDIA_TYPE]})
        return
    fd, path = tempfile.mkstemp(prefix=f"canvas{canvas._id}-", suffix=".svg", dir=os.getcwd())
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(bundle["image/svg+xml"])
    print(f"{bundle['text/plain']} (not in a Jupyter kernel: saved as {path})")
