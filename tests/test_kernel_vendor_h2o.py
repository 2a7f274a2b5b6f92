"""The vendor.h2o kernel through jupyter_kernel_test and jupyter_client, on a fake (but real:
a script and another interpreter) Driverless AI install; its interpreter dies with the kernel."""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ai.backend.kernel.languages.kernelbase.common import process_tree
from tests import kernellib
from tests.medialib import fake_dai

_DAI_ROOT = Path(tempfile.mkdtemp(prefix="krunner-fake-dai-"))


def use_fake_dai() -> None:
    """Point new kernels at a fake DAI install and make our spec visible to jupyter_client."""
    if "KRUNNER_H2O_DAI_HOME" not in os.environ or not Path(os.environ["KRUNNER_H2O_DAI_HOME"]).is_dir():
        os.environ["KRUNNER_H2O_DAI_HOME"] = str(fake_dai(_DAI_ROOT))
    kernels = kernellib.install_kernelspecs()
    link = kernels / "vendor.h2o"
    if not link.exists():
        link.symlink_to(kernellib.REPO / "kernelspecs" / "vendor.h2o", target_is_directory=True)


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    """The fake install, and the once-per-container markers its kernels wrote into the temp dir."""
    yield
    for marker in Path(tempfile.gettempdir()).glob("krunner-run-dai-*.done"):
        if str(_DAI_ROOT) in marker.read_text():
            marker.unlink()
    shutil.rmtree(_DAI_ROOT, ignore_errors=True)


class H2oKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "vendor.h2o"
    language_name = "python"
    file_extension = ".py"
    code_hello_world = 'print("hello, world")'
    code_stderr = 'import sys; print("oops", file=sys.stderr)'
    code_generate_error = 'raise ValueError("boom")'
    code_execute_result = [{"code": "1 + 2", "result": "3"}, {"code": "'a' + 'b'", "result": "'ab'"}]
    completion_samples = [{"text": "pri", "matches": {"print"}}]
    complete_code_samples = ["x = 1", "print(2)"]
    incomplete_code_samples = ["def f():", "x = [1,"]
    invalid_code_samples = ["x = = 1"]
    code_interrupt = "while True: pass"
    code_after_interrupt = 'print("alive")'
    code_stdin = 's = input()\nprint("got " + s)'

    @classmethod
    def setUpClass(cls) -> None:
        use_fake_dai()
        super().setUpClass()

    def test_state_survives_errors_and_names_complete(self) -> None:
        self.collect(self.kc.execute("kept_value = 42"))
        self.collect(self.kc.execute('raise RuntimeError("x")'))
        reply, out = self.collect(self.kc.execute("print(kept_value)"))
        self.assertIn("42", out)
        msg_id = self.kc.complete("kept_v", 6)
        reply = self.kc.get_shell_msg(timeout=kernellib.TIMEOUT)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=kernellib.TIMEOUT)
        self.assertEqual(reply["content"]["matches"], ["kept_value"])


def test_the_dai_interpreter_dies_with_the_kernel() -> None:
    """A kernel killed with SIGKILL (no cleanup possible) takes the DAI interpreter along."""
    from jupyter_client.manager import start_new_kernel

    use_fake_dai()
    km, kc = start_new_kernel(kernel_name="vendor.h2o", startup_timeout=60)
    try:
        kc.execute_interactive("print(1)", timeout=30)
        pid = km.provisioner.process.pid
        children = [p for p in process_tree(pid) if p != pid]
        assert children, "the kernel has no interpreter child"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in children):
            time.sleep(0.05)
        assert not [p for p in children if _alive(p)], "the DAI interpreter outlived the kernel"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
