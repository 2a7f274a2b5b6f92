"""The web terminal as a page: the runner's `ttyd` intrinsic service (terminado fallback where no
ttyd binary exists, as on our CI machines) opened in chromium; typing `echo hi` shows `hi`.
See docs/frontends.md ("The web terminal")."""
from __future__ import annotations

import re
import shutil

import pytest

from tests.runnerlib import RunnerProcess
from tests.browser.browserlib import launch_browser, new_page, require_browser, save_failure, wait_until

_HI_LINE = re.compile(r"(^|\n)hi\s*(\n|$)")


async def test_web_terminal_page_runs_a_command(runner_dirs, request, tmp_path):
    require_browser()
    if not shutil.which("ttyd"):
        pytest.importorskip("terminado", reason="neither ttyd nor terminado: no web terminal")
    runner = RunnerProcess("python", runner_dirs, env={
        "KRUNNER_INTRINSIC_SERVICES": "ttyd", "KRUNNER_INTRINSIC_BIND_IP": "127.0.0.1"})
    await runner.start()
    try:
        port = runner.intrinsic_ports["ttyd"]
        async with launch_browser() as browser, new_page(browser, 1000, 600) as page:
            try:
                await page.goto(f"http://127.0.0.1:{port}/")
                # ttyd and the fallback page both render the screen as text: xterm.js rows, or a <pre>
                screen = page.locator(".xterm-rows, #t pre").first
                await screen.wait_for()
                await wait_until(lambda: screen.inner_text(), "the shell's prompt")
                await page.locator("body").click()
                await page.keyboard.type("echo hi")
                await page.keyboard.press("Enter")
                text = await wait_until(
                    lambda: _first_match(screen), "`hi` on a line of its own in the terminal page")
                assert "echo hi" in text
            finally:
                await save_failure(page, request, tmp_path)
    finally:
        await runner.stop()


async def _first_match(screen) -> str | None:
    text = (await screen.inner_text()).replace("\xa0", " ")
    return text if _HI_LINE.search(text) else None
