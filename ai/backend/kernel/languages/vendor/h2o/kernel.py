"""Jupyter kernel for vendor.h2o: Python cells run by the image's H2O Driverless AI interpreter,
after the image's `run-dai.sh` has been started (`python -m ...vendor.h2o.kernel -f CONN`).

Where things are: KRUNNER_H2O_DAI_HOME (default /opt/h2oai/dai) holds `run-dai.sh`; the
interpreter is KRUNNER_H2O_PYTHON (the runner's RUNTIME_PATH when one is given), else
`<home>/python/bin/python`. An image without them gets a clear `DriverlessAINotFound` error on
every cell, and the kernel (and the runner) keep serving. `run-dai.sh` runs once per container,
in the background, so the first cells need not wait for the DAI server. See docs/runtimes.md.
"""
from __future__ import annotations

import codeop
import hashlib
import json
import logging
import os
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from ...kernelbase.common import launch
from ...kernelbase.marker import MarkerReplKernel

log = logging.getLogger(__name__)

DRIVER = Path(__file__).with_name("kernel_driver.py")
DEFAULT_HOME = "/opt/h2oai/dai"
START_TIMEOUT = float(os.environ.get("KRUNNER_H2O_START_TIMEOUT", "600"))


def dai_paths() -> tuple[Path, Path, Path]:
    """(DAI home, run-dai.sh, DAI python) from the environment."""
    home = Path(os.environ.get("KRUNNER_H2O_DAI_HOME") or DEFAULT_HOME)
    python = Path(os.environ.get("KRUNNER_H2O_PYTHON") or home / "python" / "bin" / "python")
    return home, home / "run-dai.sh", python


def missing_dai() -> str | None:
    """Why this image cannot run DAI queries, or None."""
    home, script, python = dai_paths()
    for path, what in ((script, "the DAI start script"), (python, "the DAI Python interpreter")):
        if not (path.is_file() and os.access(path, os.X_OK)):
            return (f"This image has no H2O Driverless AI: {what} {path} is missing or not executable. "
                    f"Use an H2O Driverless AI image, or point KRUNNER_H2O_DAI_HOME (and KRUNNER_H2O_PYTHON) "
                    f"at an installation.")
    return None


class DaiStarter(threading.Thread):
    """Runs `run-dai.sh` once per container (a marker in the temp dir records a successful start)."""

    def __init__(self, script: Path) -> None:
        super().__init__(name="run-dai", daemon=True)
        self.script = script
        tag = hashlib.sha1(str(script).encode()).hexdigest()[:12]
        self.marker = Path(tempfile.gettempdir()) / f"krunner-run-dai-{os.getuid()}-{tag}.done"
        self.problem: str | None = None

    def run(self) -> None:
        if self.marker.exists():
            return
        log.warning("Daemonizing H2O (%s)...", self.script)
        try:
            # its output goes to the kernel's own stdout/stderr: the runner's log
            proc = subprocess.run([str(self.script)], cwd=self.script.parent, stdin=subprocess.DEVNULL,
                                  start_new_session=True, timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.problem = f"{self.script} did not finish within {START_TIMEOUT:.0f} s (it keeps running)"
        except OSError as e:
            self.problem = f"cannot run {self.script}: {e}"
        else:
            if proc.returncode == 0:
                self.marker.write_text(f"{self.script}\n")
            else:
                self.problem = f"{self.script} exited with status {proc.returncode} (see the runner's log)"
        if self.problem:
            log.warning("%s", self.problem)


class H2oKernel(MarkerReplKernel):
    implementation = "krunner-bridge-h2o"
    language_info = {"name": "python", "mimetype": "text/x-python", "file_extension": ".py",
                     "codemirror_mode": {"name": "ipython", "version": 3}, "pygments_lexer": "ipython3"}
    banner = "Python (H2O Driverless AI)"
    install_hint = "an image with H2O Driverless AI"
    bracket_syntax = None

    def __init__(self, **kwargs: Any) -> None:
        self.missing = missing_dai()
        self.starter: DaiStarter | None = None
        self.problem_shown = False
        super().__init__(**kwargs)
        if self.missing is None:
            self.starter = DaiStarter(dai_paths()[1])
            self.starter.start()

    def spawn_argv(self) -> list[str]:
        return [str(dai_paths()[2]), "-u", str(DRIVER), self.token]

    def start_repl(self) -> None:
        if self.missing is None:
            super().start_repl()

    def cell_command(self, code: str) -> str:
        return json.dumps({"op": "run", "path": str(self.cell_file(code, ".py"))})

    def run_cell(self, code: str) -> dict[str, Any]:
        if self.missing:
            return self.fail("DriverlessAINotFound", self.missing)
        if self.starter is not None and self.starter.problem and not self.problem_shown:
            self.problem_shown = True
            self.stream("stderr", f"warning: {self.starter.problem}\n")
        return super().run_cell(code)

    def completion_candidates(self, token: str, code: str) -> set[str]:
        return set(self.query(json.dumps({"op": "complete", "prefix": token})).split())

    def is_complete_status(self, code: str) -> str:
        try:
            return "complete" if codeop.compile_command(code, "<cell>", "exec") is not None else "incomplete"
        except (SyntaxError, ValueError, OverflowError):
            return "invalid"


if __name__ == "__main__":
    launch(H2oKernel)
