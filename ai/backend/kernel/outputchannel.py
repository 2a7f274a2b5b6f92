"""The main kernel's output of the runner's own queries, over a private Unix socket
(docs/query-mode.md#the-output-channel).

A stream message on iopub costs the kernel a JSON encoding and an HMAC, and the runner a signature
check, a JSON decoding and a UTF-8 encoding, before its text becomes the agent's `stdout` frame:
more than half of what the runner and the kernel spend on a large output. Output whose parent is a
request of the runner's own session (its queries; never a gateway client's) takes this channel
instead: the kernel's outstream extension (python/runner_output.py) writes the piece's UTF-8
bytes here, framed, and the runner hands them to the agent as they are.

The socket lives in a directory only the runner's user can enter, so no signature is needed: what
arrives was written by a process of that user, as anything the kernel runs is. Order: the kernel
writes a piece completely before it publishes the next iopub message, so the runner reads what is
waiting here before it queues each iopub message of the running query (`drain`), and the agent sees
output, errors and the end of the query in the order the kernel produced them.

Frame: kind (1 stdout, 2 stderr), msg_id length (2 bytes), data length (4 bytes), msg_id, data.
"""
from __future__ import annotations

import array
import asyncio
import fcntl
import logging
import os
import shutil
import socket
import tempfile
import termios
import uuid
from collections.abc import Callable

# the kernel's end defines the frame and the variables (stdlib only, light to import)
from .python.runner_output import HEADER, KINDS as _KIND_OF_NAME, SESSION_ENV, SOCKET_ENV

log = logging.getLogger(__name__)

KINDS = {kind: name.encode() for name, kind in _KIND_OF_NAME.items()}  # 1: b"stdout", 2: b"stderr"
MAX_DATA = 64 << 20  # a frame announcing more is not ours: the connection is dropped
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes

# what the channel hands on: (msg_id, b"stdout" | b"stderr", data)
Record = tuple[str, bytes, bytearray]


class _Connection:
    """One kernel process's end: reads whole frames, never more than is waiting."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.kind = self.data_len = 0
        self.msg_id = ""
        self.target = bytearray(HEADER.size)  # what is being filled: the header, the msg_id, the data
        self.stage = 0  # 0 header, 1 msg_id, 2 data
        self.filled = 0

    @property
    def in_frame(self) -> bool:
        return self.stage != 0 or self.filled != 0

    def waiting(self) -> int:
        count = array.array("i", [0])
        fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, count)
        return count[0]

    def read(self, budget: int, emit: Callable[[Record], None]) -> bool:
        """Read up to `budget` bytes, emitting each frame completed; False once the peer is gone."""
        while True:
            want = len(self.target) - self.filled
            if want:
                if budget <= 0:
                    return True
                n = self.sock.recv_into(memoryview(self.target)[self.filled:], min(want, budget))
                if n == 0:
                    return False
                budget -= n
                self.filled += n
                if n < want:
                    continue
            self._advance(emit)

    def _advance(self, emit: Callable[[Record], None]) -> None:
        """The part being filled is complete: on to the next one."""
        if self.stage == 0:
            self.kind, id_len, data_len = HEADER.unpack(self.target)
            if self.kind not in KINDS or data_len > MAX_DATA:
                raise ValueError(f"not an output frame (kind {self.kind}, {data_len} bytes)")
            self.data_len = data_len
            self.stage, self.target = 1, bytearray(id_len)
        elif self.stage == 1:
            self.msg_id = self.target.decode("ascii", "replace")
            self.stage, self.target = 2, bytearray(self.data_len)
        else:
            emit((self.msg_id, KINDS[self.kind], self.target))  # handed on as is: no copy
            self.stage, self.target = 0, bytearray(HEADER.size)
        self.filled = 0


class OutputChannel:
    """The listening socket, its kernel connections, and the environment that tells a kernel both."""

    def __init__(self, directory: str, listener: socket.socket, emit: Callable[[Record], None] | None = None) -> None:
        self.directory, self.listener = directory, listener
        self.path = os.path.join(directory, "output.sock")
        self.session_id = uuid.uuid4().hex
        self.emit: Callable[[Record], None] = emit or (lambda record: None)
        self._connections: list[_Connection] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def open(cls, runtime_dir: str | os.PathLike[str]) -> OutputChannel | None:
        """A listening channel in a new private directory (under `runtime_dir` when its path is short
        enough for a socket, else the temp dir); None when it cannot listen (output then stays on iopub)."""
        base = str(runtime_dir) if len(str(runtime_dir)) < _MAX_SOCKET_PATH - 40 else None
        directory, listener = None, None
        try:
            directory = tempfile.mkdtemp(prefix="krunner-output-", dir=base)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(os.path.join(directory, "output.sock"))
            listener.listen(8)
            listener.setblocking(False)
        except OSError as e:
            log.warning("the kernel's output stays on iopub: no output channel (%s)", e)
            if listener is not None:
                listener.close()
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
            return None
        return cls(directory, listener)

    @property
    def env(self) -> dict[str, str]:
        """What the kernel's environment must hold for its output to come here."""
        return {SOCKET_ENV: self.path, SESSION_ENV: self.session_id}

    def start(self, emit: Callable[[Record], None]) -> None:
        """Accept kernels and emit their frames from the running loop from now on."""
        self.emit = emit
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.listener.fileno(), self._accept)

    def drain(self) -> None:
        """Emit every frame already waiting (before an iopub message is queued: it came after them)."""
        for connection in tuple(self._connections):
            if connection.waiting():  # (the usual case, nothing: one ioctl per connection)
                self._read(connection)

    def stop_reading(self) -> None:
        """Shutdown's first step: nothing more is read, so a flood of output cannot hold it up (a
        kernel then blocked writing is killed with the others)."""
        if self._loop is None or self._loop.is_closed() or self.listener.fileno() < 0:
            return
        self._loop.remove_reader(self.listener.fileno())
        for connection in self._connections:
            self._loop.remove_reader(connection.sock.fileno())

    def close(self) -> None:
        if self.listener.fileno() < 0:  # closed already
            return
        self.stop_reading()
        for connection in list(self._connections):
            self._drop(connection)
        self.listener.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            log.warning("output channel: accept failed: %s", e)
            return
        sock.setblocking(False)
        connection = _Connection(sock)
        self._connections.append(connection)
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._read, connection)
        log.info("output channel: a kernel connected (%d connected)", len(self._connections))

    def _read(self, connection: _Connection) -> None:
        try:
            waiting = connection.waiting()
            # a closed peer reads as readable with nothing waiting: one recv tells
            if not connection.read(waiting or 1, self.emit):
                self._drop(connection)
        except (BlockingIOError, InterruptedError):
            pass
        except (OSError, ValueError) as e:
            log.warning("output channel: dropping a kernel connection: %s", e)
            self._drop(connection)

    def _drop(self, connection: _Connection) -> None:
        if connection in self._connections:
            self._connections.remove(connection)
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(connection.sock.fileno())
            if connection.in_frame:
                log.warning("output channel: a kernel connection closed in the middle of a frame")
            connection.sock.close()
