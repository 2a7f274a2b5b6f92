"""Logging of the runner process: stderr (the container log) in the original's line format."""
from __future__ import annotations

import logging
import sys
import time


class RunnerLogFormatter(logging.Formatter):
    """`<prefix>: +<seconds since start> [LEVEL] message`, as the original runner logs."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.started = time.time()

    def format(self, record: logging.LogRecord) -> str:
        elapsed = record.created - self.started
        line = f"{self.prefix}: +{elapsed:,.3f} [{record.levelname}] {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(prefix: str, debug: bool) -> logging.Logger:
    """Route every logger to stderr with the `<lang>-kernel: +secs [LEVEL]` prefix; returns the
    logger the application object should use."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RunnerLogFormatter(prefix))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("traitlets", "asyncio", "tornado.access"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)
    return logging.getLogger("krunner")
