"""jupyter_kernel_test (an external conformance suite) on a kernel whose lifecycle is the
gateway's: started by POST /api/kernels, attached through the connection file the hub wrote,
shut down by DELETE — the pattern `jupyter console --existing` users follow."""
from __future__ import annotations

import os
import tempfile
import time

import jupyter_kernel_test as jkt
import requests
from jupyter_client import BlockingKernelClient

from tests.gatewaylib import GatewayProcess, isolated_env


class GatewayKernelTests(jkt.KernelTests):
    kernel_name = "python3"
    language_name = "python"
    file_extension = ".py"
    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"
    completion_samples = [{"text": "zi", "matches": {"zip"}}]
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n  return x*2\n\n\n"]
    incomplete_code_samples = ["print('''hello", "def f(x):\n  x*2"]
    invalid_code_samples = ["import = 7q"]
    code_page_something = "zip?"
    code_generate_error = "raise"
    code_execute_result = [{"code": "1+2+3", "result": "6"}, {"code": "[n*n for n in range(1, 4)]", "result": "[1, 4, 9]"}]
    code_display_data = [{"code": "from IPython.display import HTML, display; display(HTML('<b>test</b>'))",
                          "mime": "text/html"}]
    code_inspect_sample = "zip"
    code_clear_output = "from IPython.display import clear_output; clear_output()"

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.env = isolated_env(cls.tmp.name)
        cls.gw = GatewayProcess(env=cls.env, token="jkt")
        try:
            cls._attach()
        except BaseException:  # tearDownClass does not run after a failed setUpClass
            cls.gw.stop()
            cls.tmp.cleanup()
            raise

    @classmethod
    def _attach(cls) -> None:
        r = requests.post(cls.gw.url + "/api/kernels", headers=cls.gw.headers, json={"name": cls.kernel_name}, timeout=60)
        r.raise_for_status()
        cls.kernel_id = r.json()["id"]
        cfile = os.path.join(cls.env["JUPYTER_RUNTIME_DIR"], f"kernel-{cls.kernel_id}.json")
        cls.kc = BlockingKernelClient(connection_file=cfile)
        cls.kc.load_connection_file()
        cls.kc.start_channels(hb=False)
        # answers once attached; a SUB socket that connects after the kernel published the first
        # reply's idle status misses it (PUB/SUB's slow joiner), so ask again until one arrives
        deadline = time.monotonic() + 60
        while True:
            try:
                cls.kc.execute_interactive("pass", timeout=5)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.kc.stop_channels()
        requests.delete(f"{cls.gw.url}/api/kernels/{cls.kernel_id}", headers=cls.gw.headers, timeout=60)
        cls.gw.stop()
        cls.tmp.cleanup()
