"""RGBA colors, as the original drawing module had them (`Color`, the `Colors` palette)."""
from __future__ import annotations

import enum
import struct

_RGBA = struct.Struct("BBBB")


class Color:
    """An RGBA color with 0-255 channels; commands carry it as `#rrggbbaa`."""

    def __init__(self, red: int, green: int, blue: int, alpha: int = 255) -> None:
        self.red = red
        self.green = green
        self.blue = blue
        self.alpha = alpha

    @staticmethod
    def from_hex(value: str) -> Color:
        """`#rrggbb` or `#rrggbbaa` (the `#` is optional)."""
        digits = value.lstrip("#")
        if len(digits) == 6:
            digits += "ff"
        if len(digits) != 8:
            raise ValueError(f"not an #rrggbb[aa] color: {value!r}")
        return Color(*(int(digits[i:i + 2], 16) for i in range(0, 8, 2)))

    @staticmethod
    def from_rgba(value: tuple[int, ...] | list[int]) -> Color:
        return Color(*value)

    @staticmethod
    def from_bytes(value: bytes) -> Color:
        return Color(*_RGBA.unpack(value))

    def to_hex(self, include_alpha: bool = True) -> str:
        channels = (self.red, self.green, self.blue) + ((self.alpha,) if include_alpha else ())
        return "#" + "".join(f"{c:02x}" for c in channels)

    def to_bytes(self) -> bytes:
        return _RGBA.pack(self.red, self.green, self.blue, self.alpha)

    def to_rgba(self) -> str:
        return f"rgba({self.red},{self.green},{self.blue},{self.alpha})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Color):
            return NotImplemented
        return (self.red, self.green, self.blue, self.alpha) == (other.red, other.green, other.blue, other.alpha)

    def __hash__(self) -> int:
        return hash((self.red, self.green, self.blue, self.alpha))

    def __repr__(self) -> str:
        return f"Color({self.red}, {self.green}, {self.blue}, {self.alpha})"


class Colors(Color, enum.Enum):
    """Named colors; each member is also a `Color` (`Colors.Red.to_hex()`)."""

    Transparent = (255, 255, 255, 0)
    Black = (0, 0, 0, 255)
    Gray = (128, 128, 128, 255)
    White = (255, 255, 255, 255)
    Red = (255, 0, 0, 255)
    Green = (0, 255, 0, 255)
    Blue = (0, 0, 255, 255)
    Yellow = (255, 255, 0, 255)
    Magenta = (255, 0, 255, 255)
    Cyan = (0, 255, 255, 255)

    __hash__ = Color.__hash__
