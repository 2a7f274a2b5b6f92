"""Stand-in for the `ai.backend.logging` package: `BraceStyleAdapter`, a logging adapter that
formats "{}"-style messages lazily, like the original (minus its log-context fields)."""

import logging
from typing import Any


class BraceMessage:
    __slots__ = ("fmt", "args")

    def __init__(self, fmt: str, args: tuple[Any, ...]) -> None:
        self.fmt = fmt
        self.args = args

    def __str__(self) -> str:
        return self.fmt.format(*self.args)


class BraceStyleAdapter(logging.LoggerAdapter):
    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            kwargs.setdefault("stacklevel", 1)
            kwargs["stacklevel"] += 1
            self.logger._log(level, BraceMessage(str(msg), args), (), **kwargs)
