"""The completer warm-up file run inside a real ipykernel (as the runner would pass it): it leaves
the user's namespace alone, warms in a background thread, and completions work before, during
and after it (docs/performance.md)."""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

REPO = Path(__file__).resolve().parents[1]
WARM = REPO / "ai/backend/kernel/languages/python/warm_completer.py"


def start(extra: list[str]) -> tuple[Any, Any]:
    """An ipykernel launched like the runner launches its Python kernel, plus `extra` arguments."""
    km = KernelManager(kernel_name="python3")
    km.kernel_spec.argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", *extra]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    km.start_kernel(env=env)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


@pytest.fixture
def warm_kernel() -> Iterator[Any]:
    km, kc = start([f"--IPKernelApp.exec_files={WARM}"])
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def output(kc: Any, code: str) -> str:
    out: list[str] = []
    reply = kc.execute_interactive(
        code, timeout=60, output_hook=lambda m: out.append(m["content"]["text"]) if m["msg_type"] == "stream" else None)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out).strip()


def complete(kc: Any, code: str) -> list[str]:
    reply = kc.complete(code, reply=True, timeout=60)
    assert reply["content"]["status"] == "ok"
    return reply["content"]["matches"]


def test_namespace_untouched_and_completion_right_away(warm_kernel: Any) -> None:
    names = output(warm_kernel, "print(sorted(k for k in dir() if 'krb' in k or k in ('STUBS', 'load_ipython_extension')))")
    assert names == "[]"
    assert output(warm_kernel, "print(__doc__)") == "Automatically created module for IPython interactive environment"
    assert "path" in complete(warm_kernel, "import os\nos.pa")  # before the warm-up began: called off


def test_warm_up_runs_and_unwraps(warm_kernel: Any) -> None:
    deadline = time.monotonic() + 60
    code = "import threading; print(any(t.name == 'krunner-warm-completer' for t in threading.enumerate()))"
    while output(warm_kernel, code) == "True":
        assert time.monotonic() < deadline, "the warm-up thread never finished"
        time.sleep(0.2)
    assert "print" in complete(warm_kernel, "pri")
    assert "path" in complete(warm_kernel, "import os\nos.pa")
    assert output(warm_kernel, "print('completions' in vars(get_ipython().Completer))") == "False"


def test_loads_as_an_extension_too() -> None:
    km, kc = start(["--ext=ai.backend.kernel.languages.python.warm_completer"])
    try:
        assert output(kc, "print('completions' in vars(get_ipython().Completer))") == "True"  # loaded
        assert "print" in complete(kc, "pri")
        assert output(kc, "print('completions' in vars(get_ipython().Completer))") == "False"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
