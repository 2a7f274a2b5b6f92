"""`Canvas` and its drawing objects: the original's API, recorded as its command tuples.

Every call appends a tuple to the canvas's pending commands (the shapes the original front-end
decodes: `(canvas_id, "obj", obj_id, ("circle", x, y, r, border, fill, angle))`,
`(canvas_id, "update", obj_id, "x", 10)`, ...). `update()`/`show()` publishes the pending commands
and an SVG of the whole drawing so far (see docs/runtimes.md).
"""
from __future__ import annotations

import itertools
from typing import Any

from .color import Color, Colors
from .display import publish
from .turtle import Turtle

_canvas_ids = itertools.count()

# which property names an update may set, per object type (others are ignored, as before)
_POSITION = {"rect": ("x", "y"), "circle": ("x", "y"), "triangle": ("x", "y"),
             "line": ("x1", "y1", "x2", "y2")}


class DrawingObject:
    """A shape on a canvas; its setters record `update` commands."""

    def __init__(self, canvas: Canvas, id_: int, args: tuple[Any, ...]) -> None:
        self._canvas = canvas
        self._id = id_
        self._type = args[0]

    def _update(self, prop: str, value: Any) -> None:
        self._canvas._record((self._canvas._id, "update", self._id, prop, value))

    def _set_position(self, prop: str, value: float) -> None:
        if prop in _POSITION.get(self._type, ()):
            self._update(prop, value)

    def set_x(self, x: float) -> None:
        self._set_position("x", x)

    def set_y(self, y: float) -> None:
        self._set_position("y", y)

    def set_x1(self, x: float) -> None:
        self._set_position("x1", x)

    def set_y1(self, y: float) -> None:
        self._set_position("y1", y)

    def set_x2(self, x: float) -> None:
        self._set_position("x2", x)

    def set_y2(self, y: float) -> None:
        self._set_position("y2", y)

    def set_radius(self, r: float) -> None:
        if self._type == "circle":
            self._update("radius", r)

    def rotate(self, a: float) -> None:
        """Turn by `a` degrees (relative)."""
        self._update("rotate", a)

    def set_angle(self, a: float) -> None:
        """Set the rotation to `a` degrees (absolute)."""
        self._update("angle", a)

    def stroke(self, color: Color) -> None:
        self._update("color" if self._type == "line" else "border", color.to_hex())

    def fill(self, color: Color) -> None:
        if self._type != "line":
            self._update("fill", color.to_hex())


class Canvas:
    """A `width` x `height` drawing surface (pixels, origin top-left)."""

    def __init__(self, width: float, height: float, bgcolor: Color = Colors.White,
                 fgcolor: Color = Colors.Black) -> None:
        self._id = next(_canvas_ids)
        self._cmd_history: list[tuple[Any, ...]] = []  # pending: published by update()
        self._all_commands: list[tuple[Any, ...]] = []  # everything: what the SVG shows
        self._next_objid = 0
        self.width = width
        self.height = height
        self.bgcolor = bgcolor
        self.fgcolor = fgcolor
        self._record((self._id, "canvas", width, height, bgcolor.to_hex(), fgcolor.to_hex()))

    def _record(self, command: tuple[Any, ...]) -> None:
        self._cmd_history.append(command)
        self._all_commands.append(command)

    def update(self) -> None:
        """Publish the commands recorded since the last update (and an SVG of everything)."""
        publish(self, self._cmd_history, self._all_commands)
        self._cmd_history = []

    def show(self) -> None:
        """Same as `update()`."""
        self.update()

    def create_turtle(self) -> Turtle:
        return Turtle(self)

    def stop_animation(self) -> None:
        self._record((self._id, "stop-anim"))

    def resume_animation(self) -> None:
        self._record((self._id, "resume-anim"))

    def begin_group(self) -> None:
        self._record((self._id, "begin-group"))

    def end_group(self) -> None:
        self._record((self._id, "end-group"))

    def begin_fill(self, c: Color) -> None:
        self._record((self._id, "begin-fill", c.to_hex()))

    def end_fill(self) -> None:
        self._record((self._id, "end-fill"))

    def background_color(self, c: Color) -> None:
        self.bgcolor = c
        self._record((self._id, "bgcolor", c.to_hex()))

    def stroke_color(self, c: Color) -> None:
        self.fgcolor = c
        self._record((self._id, "fgcolor", c.to_hex()))

    def _colors(self, border: Color | None, fill: Color | None) -> tuple[str, str]:
        """Border defaults to the foreground colour, fill to transparent (as in the original)."""
        return ((self.fgcolor if border is None else border).to_hex(),
                (Colors.Transparent if fill is None else fill).to_hex())

    def _add(self, args: tuple[Any, ...]) -> DrawingObject:
        obj = DrawingObject(self, self._next_objid, args)
        self._record((self._id, "obj", self._next_objid, args))
        self._next_objid += 1
        return obj

    def line(self, x0: float, y0: float, x1: float, y1: float, color: Color | None = None) -> DrawingObject:
        return self._add(("line", x0, y0, x1, y1, (self.fgcolor if color is None else color).to_hex()))

    def circle(self, x: float, y: float, radius: float, border: Color | None = None,
               fill: Color | None = None, angle: float = 0) -> DrawingObject:
        """A circle centred on (x, y)."""
        return self._add(("circle", x, y, radius, *self._colors(border, fill), angle))

    def rectangle(self, left: float, top: float, width: float, height: float, border: Color | None = None,
                  fill: Color | None = None, angle: float = 0) -> DrawingObject:
        return self._add(("rect", left, top, width, height, *self._colors(border, fill), angle))

    def triangle(self, left: float, top: float, width: float, height: float, border: Color | None = None,
                 fill: Color | None = None, angle: float = 0) -> DrawingObject:
        """An isosceles triangle pointing up (before `angle`), centred on (left, top)."""
        return self._add(("triangle", left, top, width, height, *self._colors(border, fill), angle))

    def _repr_svg_(self) -> str:
        """A bare canvas in a notebook cell shows the drawing so far."""
        from .svg import render_svg

        return render_svg(self._all_commands, self._id)
