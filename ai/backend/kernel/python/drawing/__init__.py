"""Canvas and turtle drawing for user code, compatible with the original runner's module.

    from ai.backend.kernel.python.drawing import Canvas, Colors
    c = Canvas(200, 100)
    c.circle(50, 50, 30, fill=Colors.Red)
    c.update()

See docs/runtimes.md for what each command records and what the agent and notebooks receive.
"""
from .canvas import Canvas, DrawingObject
from .color import Color, Colors
from .encoding import encode_commands
from .turtle import Turtle, Vec2D

__all__ = ("Canvas", "Color", "Colors", "DrawingObject", "Turtle", "Vec2D", "encode_commands")
