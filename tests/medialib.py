"""Shared fixtures' building blocks of the issue-13 tests: a git repository with two branches and
a merge, a fake (but real: a script and an interpreter) H2O Driverless AI install, and a real
HTTP Polly endpoint served by moto."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.runnerlib import free_port

OTHER_PYTHON = shutil.which("python3", path="/usr/bin") or sys.executable

# no credentials from anywhere else: no files, no instance role
NO_AWS = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
          "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials", "AWS_CONFIG_FILE": "/nonexistent/config",
          "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
          "AWS_CONTAINER_CREDENTIALS_FULL_URI": ""}


@contextlib.contextmanager
def moto_polly() -> Iterator[str]:
    """moto's server on a free loopback port; yields its URL (AWS_ENDPOINT_URL_POLLY)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def make_repo(path: Path) -> None:
    """main: first, main work, merge of feature; feature: feat work."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "Alice", "GIT_COMMITTER_EMAIL": "a@example.com"}

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True, env=env)

    path.mkdir()
    git("init", "-q", "-b", "main")
    for branch, name, message in (("main", "a", "first"), ("feature", "b", "feat work"), ("main", "c", "main work")):
        if branch == "feature":
            git("checkout", "-q", "-b", "feature")
        elif name == "c":
            git("checkout", "-q", "main")
        (path / name).write_text(name)
        git("add", name)
        git("commit", "-q", "-m", message)
    git("merge", "-q", "--no-edit", "feature")


def fake_dai(root: Path) -> Path:
    """<root>/dai with run-dai.sh (logs each start, then exits like the real one, which daemonizes)
    and python/bin/python (another interpreter than the runner's)."""
    home = root / "dai"
    (home / "python" / "bin").mkdir(parents=True)
    (home / "python" / "bin" / "python").symlink_to(OTHER_PYTHON)
    script = home / "run-dai.sh"
    script.write_text('#!/bin/bash\necho "started $$ in $PWD" >> "$(dirname "$0")/starts.log"\n')
    script.chmod(0o755)
    return home


def jupyter_displays(runtime_dir: Path, code: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run `code` on a runner's main kernel through a plain Jupyter client attached to its
    connection file; returns the execute_reply and the display_data bundles (blocking)."""
    from jupyter_client import BlockingKernelClient

    (conn,) = Path(runtime_dir).glob("kernel-*.json")
    kc = BlockingKernelClient(connection_file=str(conn))
    kc.load_connection_file()
    kc.start_channels()
    bundles: list[dict[str, Any]] = []

    def keep(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "display_data":
            bundles.append(msg["content"]["data"])

    try:
        kc.wait_for_ready(timeout=30)
        reply = kc.execute_interactive(code, timeout=timeout, output_hook=keep)
    finally:
        kc.stop_channels()
    return reply, bundles
