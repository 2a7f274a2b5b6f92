"""Spawn the kernel's R before ipykernel is imported (docs/performance.md): R reading its
profile and attaching its default packages overlaps the kernel process's own imports."""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

DRIVER = Path(__file__).with_name("driver.R")
R_ARGS = ["--no-save", "--no-restore-data", "--quiet", "--no-readline"]


def r_environment(token: str, plot_dir: str) -> dict[str, str]:
    """R's environment: our driver as its user profile (it sources the user's own)."""
    env = dict(os.environ, TERM="dumb", PAGER="cat", KRB_R_TOKEN=token, KRB_R_PLOT_DIR=plot_dir,
               R_PROFILE_USER=str(DRIVER))
    env["KRB_R_USER_PROFILE"] = os.environ.get("R_PROFILE_USER", "")
    return env


def spawn_r(token: str, scratch: Path, fifo: Path) -> object:
    """R in a pty with its stderr on `fifo` (which the caller already opened for reading)."""
    from ..kernelbase.common import die_with_parent, load_libc
    from ..kernelbase.early import spawn_repl

    load_libc()  # here: the forked child only calls prctl through it

    def stderr_to_fifo() -> None:
        die_with_parent()
        fd = os.open(fifo, os.O_WRONLY)
        os.dup2(fd, 2)
        os.close(fd)

    return spawn_repl("R", R_ARGS, echo=False, encoding="utf-8", codec_errors="replace",
                      env=r_environment(token, str(scratch / "plots")), cwd=os.getcwd(),
                      preexec_fn=stderr_to_fifo, dimensions=(50, 200))


_early: dict[str, Any] = {}


def start_early() -> None:
    """Spawn R now, in a scratch dir of its own; the kernel adopts it (`take_early`)."""
    if shutil.which("R") is None:
        return
    try:
        scratch = Path(tempfile.mkdtemp(prefix=f"krb-r-p{os.getpid()}-"))
        (scratch / "plots").mkdir()
        fifo = scratch / "stderr.fifo"
        os.mkfifo(fifo, 0o600)
        err_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        token = "KRB" + secrets.token_hex(6).upper()
        _early.update(child=spawn_r(token, scratch, fifo), token=token, scratch=scratch, err_fd=err_fd)
    except Exception:  # noqa: BLE001 - the kernel's own start reports the real error
        _early.clear()


def take_early() -> dict[str, Any]:
    """The early R (child, token, scratch, err_fd), once; empty when none was started."""
    taken = dict(_early)
    _early.clear()
    return taken
