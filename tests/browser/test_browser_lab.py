"""JupyterLab attached to a runner (`jupyter lab --gateway-url=<the runner's gateway>`), driven in
a real chromium: the launcher, a notebook on the agent's main kernel, other kernels, interrupt,
restart and rich output. See docs/frontends.md ("Use it from JupyterLab")."""
from __future__ import annotations

import base64
import re
import json
import struct
import zlib

import pytest
import pytest_asyncio
import requests

from tests.agentlib import AgentClient, stdout_of
from tests.runnerlib import RunnerProcess, free_port

from tests.browser.browserlib import JupyterServer, launch_browser, new_page, require_browser, save_failure, screenshot, wait_until
from tests.browser import lab as jl

pytestmark = pytest.mark.asyncio(loop_scope="module")

GATEWAY_TOKEN = "gateway-token"


class Stack:
    """A runner with its gateway on, the agent's client on it, and JupyterLab attached."""

    def __init__(self, runner: RunnerProcess, gateway_url: str, agent: AgentClient, lab: JupyterServer) -> None:
        self.runner, self.gateway_url, self.agent, self.lab = runner, gateway_url, agent, lab

    def gateway(self, path: str) -> requests.Response:
        return requests.get(self.gateway_url + path, headers={"Authorization": f"token {GATEWAY_TOKEN}"}, timeout=10)

    def main_kernel_id(self) -> str | None:
        try:
            return self.gateway("/api/status").json()["main_kernel_id"]
        except requests.ConnectionError:
            return None

    async def agent_stdout(self, code: str) -> str:
        results = await self.agent.execute_until_done(None, "query", code)
        assert results[-1]["exitCode"] == 0, results
        return stdout_of(results)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory, agent_kernel_module):
    require_browser()
    pytest.importorskip("jupyterlab")
    root = tmp_path_factory.mktemp("lab")
    dirs = {name: root / name for name in ("work", "config", "runtime")}
    for d in dirs.values():
        d.mkdir()
    port = free_port()
    runner = RunnerProcess("python", dirs, env={"KRUNNER_INTRINSIC_SERVICES": ""},
                           extra_args=["--gateway-port", str(port), "--gateway-token", GATEWAY_TOKEN])
    await runner.start()
    agent = AgentClient(runner.replin_port, runner.replout_port)
    await agent.open()
    lab = JupyterServer("jupyterlab", dirs["work"], root / "lab.log", extra_args=[
        f"--gateway-url=http://127.0.0.1:{port}", f"--GatewayClient.auth_token={GATEWAY_TOKEN}"])
    stack = Stack(runner, f"http://127.0.0.1:{port}", agent, lab)
    try:
        await agent.wait_ready()
        await wait_until(stack.main_kernel_id, "the runner's gateway and main kernel")
        await lab.start()
        yield stack
    finally:
        await lab.stop(timeout=5)  # bound to the main kernel it never exits by itself (docs/frontends.md)
        await agent.close()
        await runner.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(stack):
    async with launch_browser() as b:
        yield b


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lab_page(browser, stack):
    """One JupyterLab page for the module (loading Lab costs seconds); each test opens its own
    notebook tab in it."""
    async with new_page(browser) as p:
        await jl.open_lab(p, stack.lab.url, stack.lab.token)
        yield p


@pytest_asyncio.fixture(loop_scope="module")
async def page(lab_page, request, tmp_path):
    yield lab_page
    await save_failure(lab_page, request, tmp_path)


async def test_launcher_lists_the_runner_kernelspecs_with_names_and_logos(stack, page):
    specs = stack.gateway("/api/kernelspecs").json()["kernelspecs"]
    cards = page.locator('.jp-LauncherCard[data-category="Notebook"]')
    await cards.first.wait_for()
    titles = await cards.evaluate_all("cards => cards.map(c => c.getAttribute('title'))")
    assert sorted(titles) == sorted(s["spec"]["display_name"] for s in specs.values())
    # every logo is an image the browser actually loaded (served by the gateway through Lab)
    images = cards.locator("img")
    with_logo = {name for name, spec in specs.items() if any(k.startswith("logo") for k in spec["resources"])}
    await wait_until(lambda: images.evaluate_all("imgs => imgs.every(i => i.complete)"), "the logos to load")
    logos = await images.evaluate_all("imgs => imgs.map(i => [i.alt, i.naturalWidth > 0, i.getAttribute('src')])")
    assert len(logos) == len(with_logo) and all(ok for _, ok, _ in logos), [x for x in logos if not x[1]]
    assert {src.split("/")[2] for _, _, src in logos} == with_logo


async def test_notebook_on_the_main_kernel_shares_state_with_the_agent(stack, page):
    assert await stack.agent_stdout("agent_set = 'set by the agent'; print('ok')") == "ok\n"
    main_id = stack.gateway("/api/status").json()["main_kernel_id"]
    main = stack.gateway(f"/api/kernels/{main_id}").json()
    # The steps docs/frontends.md gives a person: a notebook file, bound to the main kernel once.
    (stack.runner.dirs["work"] / "agent.ipynb").write_text(json.dumps({
        "cells": [], "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": main["name"], "display_name": main["name"]}}}))
    r = stack.lab.api("POST", "/api/sessions", json={
        "path": "agent.ipynb", "name": "agent.ipynb", "type": "notebook", "kernel": {"id": main_id}})
    assert r.status_code == 201 and r.json()["kernel"]["id"] == main_id, r.text

    await jl.open_file(page, "agent.ipynb")
    cell = await jl.run_cell(page, "print(agent_set)")
    assert (await jl.output_text(cell)).strip() == "set by the agent"
    cell = await jl.run_cell(page, "lab_set = 6 * 7; lab_set")
    assert "42" in await jl.output_text(cell)
    assert await stack.agent_stdout("print(lab_set)") == "42\n"
    await screenshot(page, "jupyterlab-attached-to-runner.png")
    # the notebook really is on the runner's main kernel, not a copy
    sessions = stack.lab.api("GET", "/api/sessions").json()
    assert [s["kernel"]["id"] for s in sessions if s["path"] == "agent.ipynb"] == [main_id]


async def test_a_notebook_on_another_language_runs_a_cell(stack, page):
    specs = stack.gateway("/api/kernelspecs").json()["kernelspecs"]
    bash = next((s for s in specs.values() if s["spec"]["language"] == "bash"), None)
    if bash is None:
        pytest.skip("no bash kernelspec on this machine")
    await jl.new_notebook(page, bash["spec"]["display_name"])
    cell = await jl.run_cell(page, "echo $((6 * 7)) from $0")
    assert (await jl.output_text(cell)).startswith("42 from")
    kernels = {k["id"]: k["name"] for k in stack.gateway("/api/kernels").json()}
    assert bash["name"] in kernels.values()


async def _python_notebook(stack, page) -> None:
    main_name = stack.gateway("/api/kernels").json()[0]["name"]
    display = stack.gateway(f"/api/kernelspecs/{main_name}").json()["spec"]["display_name"]
    await jl.new_notebook(page, display)


async def test_interrupt_a_long_loop_from_the_toolbar(stack, page):
    await _python_notebook(stack, page)
    cell = await jl.run_cell(page, "import time\nfor i in range(3000): time.sleep(0.1)", wait=False)
    await jl.wait_cell_running(cell)
    await jl.notebook(page).locator('.jp-Notebook-ExecutionIndicator[data-status="busy"]').wait_for()
    await jl.click_toolbar(page, "notebook:interrupt-kernel")
    await jl.wait_cell_done(cell)
    assert "KeyboardInterrupt" in await jl.output_text(cell)
    cell = await jl.run_cell(page, "print('interrupted at', i)")
    assert (await jl.output_text(cell)).startswith("interrupted at")


async def test_restart_from_the_ui_comes_back(stack, page):
    await _python_notebook(stack, page)
    cell = await jl.run_cell(page, "before_restart = 1; import os; os.getpid()")
    pid_before = (await jl.output_text(cell)).strip()
    await jl.click_toolbar(page, "notebook:restart-kernel")
    await jl.accept_dialog(page)
    await jl.wait_kernel_idle(page)
    cell = await jl.run_cell(page, "print('before_restart' in globals(), os.getpid() if 'os' in globals() else __import__('os').getpid())")
    fresh, pid_after = (await jl.output_text(cell)).split()
    assert fresh == "False" and pid_after != pid_before


def _png(width: int, height: int) -> bytes:
    """A solid-colour RGB PNG made from scratch (no imaging library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x20\x80\xe0" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


async def test_rich_output_renders(stack, page):
    await _python_notebook(stack, page)
    png = base64.b64encode(_png(37, 23)).decode()
    cell = await jl.run_cell(page, (
        "from IPython.display import Image, Markdown, display; import base64\n"
        "display(Markdown('# Rich *output*\\n\\n- one\\n- two'))\n"
        f"display(Image(data=base64.b64decode('{png}')))"))
    heading = cell.locator(".jp-RenderedMarkdown h1")
    await heading.wait_for()
    assert await heading.inner_text() == "Rich output"
    assert await cell.locator(".jp-RenderedMarkdown li").all_inner_texts() == ["one", "two"]
    img = cell.locator(".jp-RenderedImage img")
    await img.wait_for()
    size = await wait_until(lambda: img.evaluate("i => i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null"),
                            "the image to load")
    assert size == [37, 23]


async def test_drawing_canvas_renders(stack, page):
    """`ai.backend.kernel.python.drawing` shows a picture in JupyterLab (its SVG rendering)."""
    await _python_notebook(stack, page)
    cell = await jl.run_cell(page, (
        "from ai.backend.kernel.python.drawing import Canvas, Colors\n"
        "canvas = Canvas(240, 160, bgcolor=Colors.White)\n"
        "canvas.circle(120, 80, 40, fill=Colors.Red)\n"
        "canvas.rectangle(10, 10, 50, 30, border=Colors.Blue)\n"
        "canvas.update()"))
    img = cell.locator(".jp-RenderedSVG img")
    await img.wait_for()
    size = await wait_until(lambda: img.evaluate("i => i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null"),
                            "the drawing to load")
    assert size == [240, 160]


async def test_debugger_stops_at_a_gutter_breakpoint_and_shows_variables(stack, page):
    await _python_notebook(stack, page)
    nb = jl.notebook(page)
    # JupyterLab offers its debugger because our kernelspec says `metadata.debugger: true`
    await nb.locator('.jp-DebuggerBugButton[aria-disabled="false"]').wait_for()
    await nb.locator(".jp-DebuggerBugButton").click()
    await nb.locator('.jp-DebuggerBugButton[aria-pressed="true"]').wait_for()
    cell = await jl.type_into_new_cell(page, "first = 20\nsecond = first + 22\nprint(second)")

    # a click in the breakpoint gutter beside line 2, as a person does
    numbers = cell.locator(".cm-lineNumbers .cm-gutterElement")
    await numbers.filter(has_text="3").wait_for()
    row = [t.strip() for t in await numbers.all_inner_texts()].index("2")
    await cell.locator(".cm-breakpoint-gutter .cm-gutterElement").nth(row).click()
    breakpoints = page.locator(".jp-DebuggerBreakpoints .jp-DebuggerBreakpoint")
    await breakpoints.first.wait_for()
    assert [t.strip() for t in await breakpoints.locator(".jp-DebuggerBreakpoint-line").all_inner_texts()] == ["2"]

    await page.keyboard.press("Control+Enter")
    # stopped: line 2 highlighted, a frame in the call stack, `first` in the Variables panel
    await cell.locator(".cm-line.jp-DebuggerEditor-highlight", has_text="second = first + 22").wait_for()
    await page.locator(".jp-DebuggerCallstack .jp-DebuggerCallstackFrame").first.wait_for()
    name = page.locator(".jp-DebuggerVariables-body:visible .jp-DebuggerVariables-name", has_text=re.compile(r"^first$"))
    await name.wait_for()
    assert (await name.locator("xpath=..").locator(".jp-DebuggerVariables-detail").inner_text()).strip() == "20"
    assert await jl.outputs(cell).count() == 0  # print(second) has not run yet
    await screenshot(page, "debugger-stopped-at-breakpoint.png")

    await page.locator('jp-button[data-command="debugger:continue"]').click()
    await jl.wait_cell_done(cell)
    assert (await jl.output_text(cell)).strip() == "42"
    await nb.locator(".jp-DebuggerBugButton").click()
    await nb.locator('.jp-DebuggerBugButton[aria-pressed="false"]').wait_for()
