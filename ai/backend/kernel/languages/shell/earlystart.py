"""The Bash kernel's start: its ports listen before ipykernel is imported, and IPython's terminal
is not imported at all (docs/performance.md#third-party-kernels).

Both are called first thing by the kernel's `__main__`, before the heavy imports:

- `listen_early`: a client (jupyter_client, the runner's bridge) connects as soon as the kernel
  process is launched, and libzmq retries a refused connection only every 0.1–0.2 s. A kernel that
  binds after its ~0.4 s of imports was reached up to 0.2 s after it could answer, and the iopub
  status of the client's first `kernel_info` could be published before its subscription arrived
  (jupyter_client then waits 0.2 s and asks again). Here the connection file's shell, control,
  stdin and iopub ports listen with plain sockets at once (clients wait in the backlog), and
  ipykernel's ZeroMQ sockets take these listening sockets over when they bind (`ZMQ_USE_FD`).
- `skip_ipython_terminal`: `import IPython` imports `IPython.terminal.embed`, and with it
  prompt_toolkit (~90 ms), which a kernel that is not IPython never uses. A stand-in module
  imports the real one on first use (`IPython.embed()` and any attribute still work).
"""
from __future__ import annotations

import json
import socket
import sys
import types
from typing import Any

_listening: dict[int, int] = {}  # port -> file descriptor of its listening socket
_PORT_KEYS = ("shell_port", "iopub_port", "stdin_port", "control_port")
_TERMINAL_EMBED = "IPython.terminal.embed"


def listen_early(argv: list[str]) -> None:
    """Listen on the TCP ports of the connection file given as `-f FILE`; a port that cannot be
    bound now is left to ipykernel, which binds it (or reports why not) as usual."""
    try:
        with open(argv[argv.index("-f") + 1], encoding="utf-8") as f:
            info = json.load(f)
    except (ValueError, IndexError, OSError):
        return
    if info.get("transport", "tcp") != "tcp" or not info.get("ip"):
        return
    for key in _PORT_KEYS:
        port = info.get(key)
        if not isinstance(port, int) or port <= 0 or port in _listening:
            continue
        sock = socket.socket(socket.AF_INET6 if ":" in info["ip"] else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as libzmq does
            sock.bind((info["ip"], port))
            sock.listen(128)
        except OSError:
            sock.close()
            continue
        _listening[port] = sock.detach()  # libzmq owns (and closes) it from the bind on


def adopting_app(app_class: type) -> type:
    """`app_class` (ipykernel's IPKernelApp) whose sockets bind to the early listening sockets."""

    class EarlyPortsKernelApp(app_class):  # type: ignore[misc, valid-type]
        def _try_bind_socket(self, s: Any, port: int) -> Any:
            fd = _listening.pop(port, None)
            if fd is not None:
                import zmq

                s.setsockopt(zmq.USE_FD, fd)
            return super()._try_bind_socket(s, port)

    return EarlyPortsKernelApp


def skip_ipython_terminal() -> None:
    """Stand in for `IPython.terminal.embed` until something uses it."""
    if _TERMINAL_EMBED in sys.modules:
        return
    stand_in = types.ModuleType(_TERMINAL_EMBED, "IPython's terminal, imported on first use")

    def real() -> types.ModuleType:
        import importlib

        if sys.modules.get(_TERMINAL_EMBED) is stand_in:
            del sys.modules[_TERMINAL_EMBED]
        return importlib.import_module(_TERMINAL_EMBED)

    def embed(*args: Any, **kwargs: Any) -> Any:
        return real().embed(*args, **kwargs)

    def attribute(name: str) -> Any:
        if name.startswith("__"):  # the import system asks for __path__ & co: not a use
            raise AttributeError(name)
        return getattr(real(), name)

    stand_in.embed = embed  # type: ignore[attr-defined]
    stand_in.__getattr__ = attribute  # type: ignore[attr-defined]
    sys.modules[_TERMINAL_EMBED] = stand_in
