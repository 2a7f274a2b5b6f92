"""Python: Jupyter (ipykernel) for queries; batch runs `main.py` with the `input()` override."""
from __future__ import annotations

import logging
import os
import shutil
import site
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from ...python import put_library_first
from .. import BatchContext, Language, Plan

log = logging.getLogger(__name__)

SITECUSTOMIZE = Path(__file__).with_name("sitecustomize.py")
MARKER = "# krunner-bridge: batch-mode input() override"
OUTSTREAM_EXTENSION = "ai.backend.kernel.python.outstream"  # importable by any interpreter: docs/runtimes.md
LAUNCH_KERNEL = f"import runpy; runpy.run_path({str(Path(__file__).with_name('kernel_launcher.py'))!r}, run_name='__main__')"


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


def own_user_site(env: Mapping[str, str]) -> str | None:
    """USER_SITE of the runner's own interpreter for a child with `env`, worked out the way `site`
    does (no interpreter start on the path to the first query: docs/performance.md#cold-paths-runner-start-up-and-first-query)."""
    if env.get("PYTHONNOUSERSITE") or os.getuid() != os.geteuid() or not hasattr(site, "_get_path"):
        return None
    base = env.get("PYTHONUSERBASE") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local")
    return site._get_path(base)


async def query_user_site(runtime: str, env: dict[str, str]) -> str | None:
    """The runtime's USER_SITE as the child environment (HOME = work dir) sees it."""
    if same_interpreter(runtime, env):
        return own_user_site(env)
    import asyncio  # here: this module is imported before the runner's asyncio (preload.py)

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


async def setup(ctx: BatchContext) -> dict[str, str]:
    """Start-up hook (docs/languages.md#python): our sitecustomize in USER_SITE, and USER_SITE
    first on the children's PYTHONPATH."""
    try:
        runtime = python_tool(ctx)
    except Exception:
        log.warning("python runtime %s not found: batch input() override not installed", ctx.runtime)
        return with_drawing_library(ctx.env, {})
    user_site = await query_user_site(runtime, dict(ctx.env))
    if not user_site:
        return with_drawing_library(ctx.env, {})
    install_sitecustomize(Path(user_site))
    parts = [p for p in ctx.env.get("PYTHONPATH", "").split(os.pathsep) if p and p != user_site]
    return with_drawing_library(ctx.env, {"PYTHONPATH": os.pathsep.join([user_site, *parts])})


HAS_IPYKERNEL = "import importlib.util, sys; sys.exit(importlib.util.find_spec('ipykernel') is None)"


def same_interpreter(runtime: str, env: Mapping[str, str]) -> bool:
    """Whether RUNTIME_PATH (a path, or a name looked up on PATH) is the runner's own interpreter
    file: then it has the runner's ipykernel. A venv's python links to its base interpreter but
    has other packages: only the very same path counts."""
    found = shutil.which(runtime, path=env.get("PATH", os.defpath)) if os.sep not in runtime else runtime
    return found is not None and os.path.abspath(found) == os.path.abspath(sys.executable)


def python_kernel_argv(runtime: str, env: Mapping[str, str]) -> list[str]:
    """The kernel's argv: ipykernel under RUNTIME_PATH when that interpreter has it, else under ours.
    Asking is a start of RUNTIME_PATH that looks ipykernel up without importing it (~30 ms, not the
    ~0.5 s of an import: the launch waits for the answer)."""
    if not same_interpreter(runtime, env):
        try:
            ok = subprocess.run(
                [runtime, "-c", HAS_IPYKERNEL], env=dict(env), capture_output=True, timeout=30
            ).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if not ok:
            log.warning("%s has no ipykernel; the Python kernel runs under %s", runtime, sys.executable)
            runtime = sys.executable
    # `-m ipykernel_launcher`, plus a warm first completion (kernel_launcher.py; docs/performance.md),
    # and stream output in pieces of at most 1 MiB (docs/query-mode.md#slow-agents)
    return [*interpreter(runtime), "-f", "{connection_file}", f"--ext={OUTSTREAM_EXTENSION}"]


def interpreter(runtime: str) -> list[str]:
    """The kernel's interpreter and launcher. Without frozen stdlib modules, as ipykernel's own
    kernelspec has it on Python >= 3.11: the debugger's breakpoints in them then work (older
    interpreters ignore the -X option)."""
    return [runtime, "-Xfrozen_modules=off", "-c", LAUNCH_KERNEL]


def python_preload_argv(runtime: str) -> list[str]:
    """The kernel's interpreter started ahead of its launch; the socket's fd number is appended
    (preload.py, kernel_launcher.py)."""
    return [*interpreter(runtime), "--krunner-preload"]


def with_drawing_library(env: Mapping[str, str], changes: dict[str, str]) -> dict[str, str]:
    """`changes` plus `ai.backend.kernel.python.drawing` first on PYTHONPATH, so the runtime's own
    interpreter can import it (docs/runtimes.md)."""
    merged = {**env, **changes}
    put_library_first(merged)
    return {**changes, "PYTHONPATH": merged["PYTHONPATH"]} if "PYTHONPATH" in merged else changes


LANGUAGE = Language(
    name="python", kernelspec="python", default_runtime="/opt/backend.ai/bin/python",
    log_prefix="python-kernel", build=build, exec=exec_, setup=setup, kernel_argv=python_kernel_argv,
    preload_argv=python_preload_argv,
    install_hint="apt-get install python3",
)
