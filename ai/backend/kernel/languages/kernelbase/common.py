"""Helpers shared by the kernel bases: child process set-up, completion, bracket balance, replies.

Whether a program waits for input, and how a program dies with its parent, are process facts:
`StdinWatch`, `process_tree` and `pdeathsig_argv` come from `ai.backend.kernel.procfacts`
(re-exported here for the kernel bases).
"""
from __future__ import annotations

import logging
import os
import re
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ...procfacts import StdinWatch, pdeathsig_argv, process_tree  # noqa: F401 (re-exported for the kernel bases)

log = logging.getLogger(__name__)

IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


_PR_SET_PDEATHSIG = 1
_LIBC: Any = None


def load_libc() -> Any:
    """libc through ctypes, loaded in the parent (a child after fork must not import anything)."""
    global _LIBC
    if _LIBC is None:
        import ctypes

        try:
            _LIBC = ctypes.CDLL(None, use_errno=True)
        except OSError:
            _LIBC = False
    return _LIBC


def die_with_parent() -> None:
    """In a child (preexec): get SIGKILL when the kernel dies, even by SIGKILL.

    Why: our children run in their own session (for interrupts), so nothing else reaches a
    runaway program or interpreter once the kernel is gone. The signal comes when the THREAD
    that forked exits: start long-lived children from the main thread.
    """
    libc = _LIBC  # set up by the parent (see pdeathsig_argv / default_sigint's callers)
    if libc:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def default_sigint() -> None:
    """preexec_fn: children must not inherit the kernel's ignored SIGINT (exec keeps SIG_IGN),
    and must not outlive the kernel. Call `load_libc()` in the parent before using it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    die_with_parent()


def scratch_dir(lang: str) -> Path:
    """A private temp dir for a kernel's cell files, named after our pid; removes the dirs of
    kernels that died without cleaning up (a kernel killed with SIGKILL cannot)."""
    import shutil
    import tempfile

    root = Path(tempfile.gettempdir())
    for old in root.glob("krb-*-p*-*"):
        m = re.match(r"krb-.*-p(\d+)-", old.name)
        try:
            mine = old.is_dir() and old.stat().st_uid == os.getuid()
        except OSError:
            continue
        if m and mine and int(m.group(1)) != os.getpid() and not Path(f"/proc/{m.group(1)}").exists():
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"krb-{lang}-p{os.getpid()}-"))


def token_before(code: str, cursor_pos: int, extra: str = "") -> tuple[str, int]:
    """The identifier-like token ending at the cursor and where it starts."""
    pattern = re.compile(r"[A-Za-z0-9_" + re.escape(extra) + r"]*$")
    m = pattern.search(code[:cursor_pos])
    token = m.group(0) if m else ""
    return token, cursor_pos - len(token)


def complete_reply(matches: Iterable[str], start: int, end: int) -> dict[str, Any]:
    """A complete_reply content with sorted unique matches."""
    return {"status": "ok", "matches": sorted(set(matches)), "cursor_start": start,
            "cursor_end": end, "metadata": {}}


def identifiers(texts: Iterable[str]) -> set[str]:
    """Every identifier in the given sources: cheap 'names defined in earlier cells'."""
    found: set[str] = set()
    for text in texts:
        found.update(IDENT_RE.findall(text))
    return found


def bracket_state(code: str, *, line_comments: tuple[str, ...] = ("//",),
                  block_comments: tuple[tuple[str, str], ...] = (("/*", "*/"),),
                  quotes: str = "\"'", char_literal_prefix: str | None = None) -> str:
    """'complete', 'incomplete' or 'invalid' from bracket balance, ignoring strings and comments.

    Why: the C-like languages and Scheme have no cheap parser at hand, but an open bracket,
    string or comment at the end of a cell is what 'incomplete' means to a console front-end.
    """
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if char_literal_prefix and code.startswith(char_literal_prefix, i):
            i += len(char_literal_prefix) + 1
            while i < n and (code[i].isalnum()):
                i += 1
            continue
        lc = next((lc for lc in line_comments if code.startswith(lc, i)), None)
        if lc:
            nl = code.find("\n", i)
            i = n if nl < 0 else nl + 1
            continue
        bc = next((b for b in block_comments if code.startswith(b[0], i)), None)
        if bc:
            end = code.find(bc[1], i + len(bc[0]))
            if end < 0:
                return "incomplete"
            i = end + len(bc[1])
            continue
        if c in quotes:
            j = i + 1
            while j < n and code[j] != c:
                j += 2 if code[j] == "\\" else 1
            if j >= n:
                return "incomplete"
            i = j + 1
            continue
        if c in "([{":
            stack.append(c)
        elif c in ")]}":
            if not stack or stack.pop() != pairs[c]:
                return "invalid"
        i += 1
    return "incomplete" if stack else "complete"


def error_content(ename: str, evalue: str, traceback: list[str] | None = None) -> dict[str, Any]:
    """The content of an `error` message (also the extra keys of an error execute_reply)."""
    return {"ename": ename, "evalue": evalue, "traceback": traceback if traceback is not None else [evalue]}


def which_or_none(*names: str) -> str | None:
    """The first executable found on PATH among `names`."""
    import shutil

    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def launch(kernel_class: type) -> None:
    """Run `kernel_class` as a Jupyter kernel (the `python -m ...kernel -f CONN` entry point)."""
    from ipykernel.kernelapp import IPKernelApp

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    IPKernelApp.launch_instance(kernel_class=kernel_class)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}
