"""`StdoutBatching`: whole stdout lines of a cell go out as few stream messages, in order.

One stream message per line loses output: a cell printing 100,000 lines overruns the 1000-message
queues of iopub's PUB/SUB sockets when the front-end reads slowly, and ZeroMQ drops what does not
fit (docs/languages.md#our-kernels).
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .base import LanguageKernel

STDOUT_BATCH = 65536  # characters of whole stdout lines sent as one stream message at most
STDOUT_FLUSH_EVERY = 0.02  # seconds between two batched stdout messages while output streams


class StdoutBatching(LanguageKernel):
    """Inside `batched_stdout()`, whole stdout lines given to `stream` are held and sent together:
    when the reader calls `flush_batch(unless_recent=True)` at the end of a read and
    STDOUT_FLUSH_EVERY has passed since the last batch, when STDOUT_BATCH is reached, when the
    reader calls `flush_batch()` (output went quiet), and before anything else is published
    (stderr, a partial line, a result, an error), so the order of the output is kept. Callers
    flush before an input request (it goes on the stdin channel, not through `send_response`).
    """

    def __init__(self, **kwargs: Any) -> None:
        self._batch_lines: list[str] = []
        self._batch_size = 0
        self._batching = False
        self._last_flush = 0.0
        super().__init__(**kwargs)

    @contextmanager
    def batched_stdout(self, enabled: bool = True) -> Iterator[None]:
        self._batching = enabled
        try:
            yield
        finally:
            self.flush_batch()
            self._batching = False

    def stream(self, name: str, text: str) -> None:
        if self._batching and name == "stdout" and text.endswith("\n") and not self.silent:
            self._batch_lines.append(text)
            self._batch_size += len(text)
            if self._batch_size >= STDOUT_BATCH:
                self.flush_batch()
            return
        self.flush_batch()
        super().stream(name, text)

    def send_response(self, *args: Any, **kwargs: Any) -> Any:
        self.flush_batch()  # anything published after held lines goes out after them
        return super().send_response(*args, **kwargs)

    def flush_batch(self, *, unless_recent: bool = False) -> None:
        """Send the held stdout lines; with `unless_recent`, only if the last batch went out at
        least STDOUT_FLUSH_EVERY ago."""
        if not self._batch_lines:
            return
        now = time.monotonic()
        if unless_recent and now - self._last_flush < STDOUT_FLUSH_EVERY:
            return
        text = "".join(self._batch_lines)
        self._batch_lines.clear()
        self._batch_size = 0
        self._last_flush = now
        super().send_response(self.iopub_socket, "stream", {"name": "stdout", "text": text})
