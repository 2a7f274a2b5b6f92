"""Stand-in for ai.backend.common.enum_extension.StringSetFlag: a str enum whose members compare
and hash like their values, so `ClientFeatures.CONTINUATION in frozenset({"continuation"})` works
exactly as in the original (which is what get_next_result relies on)."""

import enum
from typing import Any


class StringSetFlag(str, enum.Enum):  # the original derives from enum.StrEnum (same thing here)
    def __eq__(self, other: Any) -> bool:
        return self.value == other

    def __hash__(self) -> int:
        return hash(self.value)

    def __str__(self) -> str:
        return str(self.value)
