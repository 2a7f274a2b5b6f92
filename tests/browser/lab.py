"""Galata-style helpers for JupyterLab 4 / Notebook 7 pages: every step waits for a state the UI
shows (an execution count, a kernel status, a rendered output), never for a fixed time.

Selectors are JupyterLab's own public classes and `data-command` attributes (the ones Galata uses);
nothing here depends on markup that our tests add.
"""
from __future__ import annotations

import re

from tests.browser.browserlib import TIMEOUT

_DONE_PROMPT = re.compile(r"\[\d+\]")


async def open_lab(page, base_url: str, token: str, path: str = "lab") -> None:
    """Load JupyterLab (a clean workspace) and wait until its shell is up and the splash is gone."""
    sep = "&" if "?" in path else "?"
    await page.goto(f"{base_url}/{path}{sep}reset&token={token}")
    await page.locator("#jp-main-dock-panel").wait_for()
    await page.locator("#jupyterlab-splash").wait_for(state="detached")


def notebook(page):
    """The notebook panel in front."""
    return page.locator(".jp-NotebookPanel:visible")


def current_tab_label(page):
    return page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")


async def wait_kernel_idle(page) -> None:
    """Wait until the front notebook's kernel is connected and idle.

    The status bar's kernel item ("Change kernel for <file>") reads "<kernel> | Idle" only once
    the notebook's kernel has answered; the toolbar's execution indicator starts out "idle"
    before any kernel is there, so it is checked last."""
    name = (await current_tab_label(page).inner_text()).strip()
    item = page.locator(f'#jp-main-statusbar .jp-StatusBar-TextItem[title="Change kernel for {name}"]')
    await item.filter(has_text=re.compile(r"\|\s*Idle\s*$")).wait_for()
    await notebook(page).locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for()


async def new_notebook(page, kernel_display_name: str) -> None:
    """Open a new notebook from the launcher card of a kernelspec and wait for its kernel
    (a new launcher is opened from the file browser when none is in front)."""
    if not await page.locator(".jp-Launcher:visible").count():
        await page.locator('.jp-FileBrowser [data-command="launcher:create"]').click()
    await page.locator(f'.jp-Launcher:visible .jp-LauncherCard[data-category="Notebook"][title="{kernel_display_name}"]').click()
    await notebook(page).locator(".jp-Cell").first.wait_for()
    await wait_kernel_idle(page)


async def open_file(page, name: str) -> None:
    """Open a notebook from the file browser (double-click, as a person does) and wait for its kernel."""
    await page.locator('.jp-FileBrowser [data-command="filebrowser:refresh"]').click()
    await page.locator(".jp-DirListing-item .jp-DirListing-itemText", has_text=name).dblclick()
    await page.locator(".jp-NotebookPanel:visible").wait_for()
    await page.locator(".lm-TabBar-tab.lm-mod-current", has_text=name).wait_for()
    await wait_kernel_idle(page)


def cells(page):
    return notebook(page).locator(".jp-Notebook .jp-Cell")


async def type_into_new_cell(page, code: str):
    """Put `code` into a new cell at the end (the notebook's only cell while it is empty);
    returns that cell's locator once the editor shows the code."""
    count = await cells(page).count()
    first_editor = cells(page).first.locator(".cm-content")
    if count == 1 and not (await first_editor.inner_text()).strip():
        cell = cells(page).first
    else:
        await cells(page).last.locator(".jp-InputArea-prompt").click()  # select the last cell: insert below it
        await click_toolbar(page, "notebook:insert-cell-below")
        cell = cells(page).nth(count)
        await cell.wait_for()
    editor = cell.locator(".cm-content")
    await editor.click()
    await page.keyboard.insert_text(code)
    await editor.filter(has_text=code.splitlines()[0].strip()).wait_for()
    return cell


async def run_cell(page, code: str, *, wait: bool = True, timeout: float = TIMEOUT):
    """Type `code` into a new cell, run it (Ctrl+Enter: run, stay) and by default wait for its
    execution count; returns the cell locator."""
    cell = await type_into_new_cell(page, code)
    await page.keyboard.press("Control+Enter")
    if wait:
        await wait_cell_done(cell, timeout)
    return cell


async def wait_cell_done(cell, timeout: float = TIMEOUT) -> None:
    prompt = cell.locator(".jp-InputArea-prompt")
    await prompt.filter(has_text=_DONE_PROMPT).wait_for(timeout=timeout * 1000)


async def wait_cell_running(cell) -> None:
    await cell.locator(".jp-InputArea-prompt").filter(has_text="[*]").wait_for()


def outputs(cell):
    return cell.locator(".jp-OutputArea-output")


async def output_text(cell) -> str:
    return "\n".join(await outputs(cell).all_inner_texts())


async def click_toolbar(page, command: str) -> None:
    """Click a notebook toolbar button by its JupyterLab command id."""
    await notebook(page).locator(f'.jp-NotebookPanel-toolbar [data-command="{command}"]').click()


async def accept_dialog(page, label: str | None = None) -> None:
    """Press the accept button of the open JupyterLab dialog."""
    dialog = page.locator(".jp-Dialog")
    await dialog.wait_for()
    button = dialog.locator(".jp-Dialog-button.jp-mod-accept")
    if label:
        button = button.filter(has_text=label)
    await button.click()
    await dialog.wait_for(state="detached")
