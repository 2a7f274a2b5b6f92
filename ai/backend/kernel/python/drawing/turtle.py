"""`Turtle` (a pen on a `Canvas`) and `Vec2D`, with the original's methods and commands."""
from __future__ import annotations

import math
from typing import Any, Protocol

from .color import Color, Colors


class Canvas(Protocol):
    """What a turtle draws on (a protocol, so this module does not import canvas.py)."""

    width: float
    height: float

    def triangle(self, x: float, y: float, width: float, height: float, **kwargs: Any) -> Any: ...

    def line(self, x1: float, y1: float, x2: float, y2: float, **kwargs: Any) -> Any: ...

    def begin_group(self) -> Any: ...

    def end_group(self) -> Any: ...

_TRAIL = (255, 0, 0, 128)  # the original's half-transparent red trail
_CURSOR_FILL = (255, 200, 200, 255)


class Vec2D(tuple):
    """A 2-D vector (x, y), like the standard library turtle's."""

    def __new__(cls, x: float, y: float) -> Vec2D:
        return tuple.__new__(cls, (x, y))

    def __add__(self, other: Any) -> Vec2D:  # type: ignore[override]
        return Vec2D(self[0] + other[0], self[1] + other[1])

    def __mul__(self, other: Any) -> Any:  # type: ignore[override]
        if isinstance(other, Vec2D):
            return self[0] * other[0] + self[1] * other[1]  # dot product
        return Vec2D(self[0] * other, self[1] * other)

    def __rmul__(self, other: Any) -> Any:  # type: ignore[override]
        if isinstance(other, (int, float)):
            return Vec2D(self[0] * other, self[1] * other)
        return NotImplemented

    def __sub__(self, other: Any) -> Vec2D:
        return Vec2D(self[0] - other[0], self[1] - other[1])

    def __neg__(self) -> Vec2D:
        return Vec2D(-self[0], -self[1])

    def __abs__(self) -> float:
        return math.hypot(self[0], self[1])

    def rotate(self, angle: float) -> Vec2D:
        """This vector turned counterclockwise by `angle` degrees."""
        rad = math.radians(angle)
        c, s = math.cos(rad), math.sin(rad)
        return Vec2D(self[0] * c - self[1] * s, self[1] * c + self[0] * s)

    def __getnewargs__(self) -> tuple[float, float]:  # type: ignore[override]
        return (self[0], self[1])

    def __repr__(self) -> str:
        return "(%.2f,%.2f)" % self


class Turtle:
    """Starts at the canvas centre heading right (angle 90: clockwise from north, in degrees);
    draws a red trail while the pen is down. `pos()` is relative to the start."""

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self.pen = True
        self.angle: float = 90
        start = (canvas.width / 2, canvas.height / 2)
        self.points: list[tuple[float, float]] = [start]
        self.cursor = canvas.triangle(start[0], start[1], 12, 18, border=Colors.Red,
                                      fill=Colors.from_rgba(list(_CURSOR_FILL)), angle=90)

    def _move_to(self, x: float, y: float) -> None:
        last_x, last_y = self.points[-1]
        self.canvas.begin_group()
        if self.pen:
            self.canvas.line(last_x, last_y, x, y, color=Color.from_rgba(list(_TRAIL)))
        self.cursor.set_x(x)
        self.cursor.set_y(y)
        self.canvas.end_group()
        self.points.append((x, y))

    def forward(self, amt: float) -> None:
        x, y = self.points[-1]
        heading = math.radians(self.angle)
        self._move_to(x + math.sin(heading) * amt, y - math.cos(heading) * amt)

    def left(self, deg: float) -> None:
        self.cursor.rotate(-deg)
        self.angle -= deg

    def right(self, deg: float) -> None:
        self.cursor.rotate(deg)
        self.angle += deg

    def pos(self) -> Vec2D:
        (x0, y0), (x, y) = self.points[0], self.points[-1]
        return Vec2D(x - x0, y - y0)

    def penup(self) -> None:
        self.pen = False

    def pendown(self) -> None:
        self.pen = True

    def setpos(self, x: Any, y: float | None = None) -> None:
        """Move to (x, y) relative to the start; `x` may be a pair (a `Vec2D`)."""
        if y is None:
            x, y = x[0], x[1]
        x0, y0 = self.points[0]
        self._move_to(x + x0, y + y0)
