"""The Julia kernel. No Julia is packaged for Debian bookworm: without it the kernel must start
and answer every cell with a clear error; with it, the usual suite runs."""
from tests import kernellib


import shutil

import pytest
from jupyter_client.manager import start_new_kernel


class JuliaKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "julia"
    language_name = "julia"
    file_extension = ".jl"
    tools = ("julia",)
    code_hello_world = 'println("hello, world")'
    code_stderr = 'println(stderr, "oops")'
    code_generate_error = 'error("boom")'
    code_execute_result = [{"code": "1 + 2", "result": "3"}]
    code_interrupt = "while true end"
    code_after_interrupt = 'println("alive")'
    code_stdin = 'println("got ", readline())'


@pytest.mark.skipif(shutil.which("julia") is not None, reason="julia is installed: the suite above runs instead")
def test_missing_julia_is_reported() -> None:
    kernellib.install_kernelspecs()
    km, kc = start_new_kernel(kernel_name="julia", startup_timeout=60)
    try:
        reply = kc.execute_interactive('println("hi")', timeout=30)
        assert reply["content"]["status"] == "error"
        assert "julia is not installed" in reply["content"]["evalue"]
        matches = kc.complete("whil", reply=True, timeout=10)["content"]["matches"]
        assert "while" in matches
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
