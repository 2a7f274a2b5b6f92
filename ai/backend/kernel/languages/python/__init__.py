"""Python: Jupyter (ipykernel) for queries; batch runs `main.py` with the `input()` override."""
from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .. import BatchContext, Language, Plan

if TYPE_CHECKING:
    from ...runner import Runner

log = logging.getLogger(__name__)

SITECUSTOMIZE = Path(__file__).with_name("sitecustomize.py")
MARKER = "# krunner-bridge: batch-mode input() override"


def python_tool(ctx: BatchContext) -> str:
    return ctx.tool(ctx.runtime, "python3", "python", sys.executable)


def build(ctx: BatchContext) -> Plan:
    if ctx.exists("setup.py", "pyproject.toml"):
        return ctx.run(python_tool(ctx), "-m", "pip", "install", "--user", "-e", ".")
    return ctx.skip('skipping the build phase due to missing "setup.py" file')


def exec_(ctx: BatchContext) -> Plan:
    if not ctx.exists("main.py"):
        return ctx.no_entry('the main script ("main.py")')
    return ctx.run(python_tool(ctx), "main.py")


def install_sitecustomize(user_site: Path) -> bool:
    """Copy our `sitecustomize.py` into USER_SITE, unless a sitecustomize that is not ours is
    there: a user's own file is never overwritten (Python programs then read input through the
    stdin pipe, which batch mode serves the same way). Returns whether ours is in place."""
    target = user_site / "sitecustomize.py"
    source = SITECUSTOMIZE.read_text()
    try:
        if target.exists():
            current = target.read_text(errors="replace")
            if MARKER not in current:
                log.warning("%s is not ours: leaving it alone (batch input goes through stdin)", target)
                return False
            if current == source:
                return True
        user_site.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".sitecustomize.{os.getpid()}.tmp")
        tmp.write_text(source)
        tmp.replace(target)
        return True
    except OSError as e:
        log.warning("cannot install %s: %s", target, e)
        return False


async def query_user_site(runtime: str, env: dict[str, str]) -> str | None:
    """The runtime's USER_SITE as the child environment (HOME = work dir) sees it."""
    try:
        proc = await asyncio.create_subprocess_exec(
            runtime, "-c", "import site; print(site.USER_SITE)", env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
    except (OSError, asyncio.TimeoutError) as e:
        log.warning("cannot ask %s for its USER_SITE: %s", runtime, e)
        return None
    text = out.decode(errors="replace").strip()
    return text if proc.returncode == 0 and text and text != "None" else None


async def setup(runner: Runner) -> None:
    """Runner start-up hook (docs/languages.md#python): USER_SITE first on PYTHONPATH + our sitecustomize."""
    _put_drawing_library_first(runner.child_env)
    ctx = BatchContext("python", Path(runner.work_dir), runner.runtime_path, runner.child_env)
    try:
        runtime = python_tool(ctx)
    except Exception:
        log.warning("python runtime %s not found: batch input() override not installed", runner.runtime_path)
        return
    user_site = await query_user_site(runtime, dict(runner.child_env))
    if not user_site:
        return
    parts = [p for p in runner.child_env.get("PYTHONPATH", "").split(os.pathsep) if p and p != user_site]
    runner.child_env["PYTHONPATH"] = os.pathsep.join([user_site, *parts])
    _put_drawing_library_first(runner.child_env)
    install_sitecustomize(Path(user_site))


def _put_drawing_library_first(env: dict[str, str]) -> None:
    """`ai.backend.kernel.python.drawing` importable by the runtime's interpreter (docs/runtimes.md)."""
    from ...python import put_library_first

    put_library_first(env)


LANGUAGE = Language(
    name="python", kernelspec="python", default_runtime="/opt/backend.ai/bin/python",
    log_prefix="python-kernel", build=build, exec=exec_, setup=setup,
    install_hint="apt-get install python3",
)
