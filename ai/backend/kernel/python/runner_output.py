"""The kernel's end of the runner's output channel (ai/backend/kernel/outputchannel.py;
docs/query-mode.md#the-output-channel).

Stream output whose parent request came from the runner's own session is written to the runner's
Unix socket as UTF-8 bytes instead of being published on iopub: no JSON encoding, no HMAC, no
decoding on the other side. Everything else — other clients' output, rich output, errors, status —
is published as always. The outstream extension's flush (outstream.py, in the IO thread) offers each
piece here first; a piece is written completely before the IO thread publishes anything after it,
which is what keeps the order on the runner's side. Any failure (a runner that stopped reading for
SEND_TIMEOUT s, a closed socket) sends that piece and everything after it on iopub.

(ipykernel's own `register_hook` cannot do this: a hook that takes a message ends that flush, and the
flush's other pieces are lost.) Stdlib only.
"""
from __future__ import annotations

import os
import socket
import struct
import sys
import threading
from typing import Any

HEADER = struct.Struct("!BHI")  # kind, msg_id length, data length; then the msg_id, then the data
KINDS = {"stdout": 1, "stderr": 2}
SOCKET_ENV, SESSION_ENV = "KRUNNER_OUTPUT_SOCKET", "KRUNNER_OUTPUT_SESSION"
SEND_TIMEOUT = 30.0


class RunnerOutput:
    """The runner's socket, and which stream output goes there."""

    def __init__(self, path: str, session: str) -> None:
        self.path, self.session = path, session
        self.sock: socket.socket | None = None
        self.broken = False
        self.lock = threading.Lock()  # flushes run in the IO thread; in the main one once it is gone

    def take(self, parent: dict[str, Any], name: str, text: str) -> bool:
        """Write one piece of `name`'s output to the runner if its parent is the runner's; False: it
        goes on iopub (not the runner's, or the channel failed: then nothing goes here any more)."""
        kind = KINDS.get(name)
        if self.broken or kind is None or parent.get("session") != self.session:
            return False
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: iopub's encoder knows what to do with them
            return False
        msg_id = str(parent.get("msg_id", "")).encode("ascii", "replace")[:0xFFFF]
        with self.lock:
            try:
                sock = self.sock or self._connect()
                sock.sendall(HEADER.pack(kind, len(msg_id), len(data)) + msg_id)
                sock.sendall(data)
            except OSError as e:
                # a frame cut short is dropped by the runner: this piece goes on iopub, whole
                self._give_up(e)
                return False
        return True

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(SEND_TIMEOUT)
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        return sock

    def _give_up(self, error: OSError) -> None:
        self.broken = True
        print(f"krunner: output goes on iopub from now on (output channel: {error})", file=sys.__stderr__)
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def connect_from_env() -> RunnerOutput | None:
    """The runner's channel, when the runner asked for it (the variables are taken out of the
    environment: the user's programs do not need them); None without it, or when it cannot connect."""
    path, session = os.environ.pop(SOCKET_ENV, None), os.environ.pop(SESSION_ENV, None)
    if not path or not session:
        return None
    channel = RunnerOutput(path, session)
    try:
        channel._connect()  # now, not at the first output: the first query's output pays nothing for it
    except OSError as e:
        channel._give_up(e)
        return None
    return channel
