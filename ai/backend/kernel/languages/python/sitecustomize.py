# krunner-bridge: batch-mode input() override
"""Installed by krunner-bridge into the Python runtime's USER_SITE (docs/batch.md#user-input).

In batch mode (`_BACKEND_BATCH_MODE` is a non-zero integer) `input()` asks the runner for the user's
text over its Unix socket, so the agent sees `waiting-input` and the next `input` op answers it.
The reply is read until the runner closes the connection, so input of any length and any
multibyte text arrives whole. With no input channel (no runner socket) `input()` raises EOFError, as
at the end of a closed stdin. Any other sitecustomize further down sys.path is still run.
"""
import builtins
import os
import socket
import sys


def _batch_mode():
    try:
        return int(os.environ.get("_BACKEND_BATCH_MODE", "0")) != 0
    except ValueError:
        return False


def _socket_input(prompt=""):
    if prompt:
        sys.stdout.write(str(prompt))
    sys.stdout.flush()
    path = os.environ.get("KRUNNER_USER_INPUT_SOCKET") or "/tmp/bai-user-input.sock"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(path)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError as e:
        raise EOFError(f"no user input channel ({path}: {e.strerror or e})") from None
    return b"".join(chunks).decode("utf-8", errors="replace")


def _chain_next_sitecustomize():
    """Run the sitecustomize this file shadows (e.g. the distribution's), if there is one."""
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        candidate = os.path.join(entry or ".", "sitecustomize.py")
        if os.path.dirname(os.path.abspath(candidate)) == here or not os.path.isfile(candidate):
            continue
        try:
            with open(candidate, "rb") as f:
                code = compile(f.read(), candidate, "exec")
            exec(code, {"__name__": "_shadowed_sitecustomize", "__file__": candidate})
        except Exception as e:  # a broken foreign hook must not break every program
            sys.stderr.write(f"Error in {candidate}: {e!r}\n")
        return


if _batch_mode() and not hasattr(builtins, "_input"):
    builtins._input = builtins.input
    builtins.input = _socket_input

_chain_next_sitecustomize()
