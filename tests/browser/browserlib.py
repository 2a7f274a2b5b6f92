"""Browser harness for the front-end journeys: Debian's chromium driven by Playwright, Jupyter
servers as real subprocesses, and waits that watch states (never sleeps), as Galata does.

Environment knobs: KRUNNER_CHROMIUM (browser binary, default /usr/bin/chromium),
KRUNNER_BROWSER_TIMEOUT (seconds any single wait may take, default 60),
KRUNNER_SCREENSHOTS (a directory: tests that take documentation screenshots write them there;
`make`-free refresh command in docs/testing.md).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import requests

from tests.runnerlib import free_port

CHROMIUM = os.environ.get("KRUNNER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT = float(os.environ.get("KRUNNER_BROWSER_TIMEOUT", "60"))
SCREENSHOTS = os.environ.get("KRUNNER_SCREENSHOTS", "")
ARTIFACTS = os.environ.get("KRUNNER_BROWSER_ARTIFACTS", "")  # failure screenshots go here when set


def require_browser() -> None:
    """Skip (with the reason) where the browser or Playwright is missing."""
    pytest.importorskip("playwright.async_api", reason="playwright is not installed (.ci/install.d/70-browser.sh)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no chromium at {CHROMIUM} (.ci/install.d/70-browser.sh installs Debian's)")


@contextlib.asynccontextmanager
async def launch_browser() -> AsyncIterator:
    """A headless Debian chromium under Playwright (its own browser downloads are never used)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
        browser = await pw.chromium.launch(executable_path=CHROMIUM,
                                           args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def new_page(browser, width: int = 1280, height: int = 800) -> AsyncIterator:
    """A page in a fresh context (own cookies/storage); every wait on it times out after TIMEOUT."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT * 1000)
    context.set_default_navigation_timeout(TIMEOUT * 1000)
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def save_failure(page, request, tmp_path: Path) -> None:
    """After a failed test, keep a screenshot of the page (KRUNNER_BROWSER_ARTIFACTS, else tmp)."""
    report = getattr(request.node, "rep_call", None)
    if report is None or not report.failed:
        return
    folder = Path(ARTIFACTS) if ARTIFACTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{request.node.name}.png"
    with contextlib.suppress(Exception):
        await page.screenshot(path=str(path), timeout=5000)
        print(f"failure screenshot: {path}")


async def screenshot(page, name: str, clip_selector: str | None = None) -> Path | None:
    """Save a documentation screenshot when KRUNNER_SCREENSHOTS names a directory."""
    if not SCREENSHOTS:
        return None
    path = Path(SCREENSHOTS) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    target = page.locator(clip_selector) if clip_selector else page
    await target.screenshot(path=str(path), animations="disabled", caret="hide")
    return path


async def wait_until(predicate, what: str, timeout: float = TIMEOUT, interval: float = 0.1):
    """Poll `predicate` (sync or async) until it returns a truthy value; fail with `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


class JupyterServer:
    """`python -m <module>` (jupyterlab, notebook, jupyter_server) on a free loopback port, in its
    own process group, with a token; `stop()` ends it and checks it is gone."""

    def __init__(self, module: str, root_dir: Path, log_path: Path, *, token: str = "lab-token",
                 extra_args: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.module = module
        self.root_dir = root_dir
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.argv = [
            sys.executable, "-m", module, "--no-browser", f"--port={self.port}", "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
            *(["--allow-root"] if os.geteuid() == 0 else []), *(extra_args or []),
        ]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def api(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, self.url + path, headers=self.headers, timeout=30, **kw)

    async def start(self) -> JupyterServer:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.module} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                return requests.get(self.url + "/api/status", headers=self.headers, timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        await wait_until(ready, f"{self.module} to answer on {self.url}")
        return self

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    async def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM, then SIGKILL after `timeout`; True when the server exited by itself.

        jupyter_server in gateway mode never exits after a DELETE of one of its kernels fails
        with anything but 404 (as the runner's protected main kernel answers 403): its shutdown
        raises and its loop keeps running. docs/frontends.md describes it; here it costs `timeout`."""
        if self.proc is None or self.proc.poll() is not None:
            return True
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            await wait_until(lambda: self.proc.poll() is not None, f"{self.module} to exit", timeout)
            return True
        except AssertionError:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return False
        finally:
            self._log.close()
