"""The R kernel (IRkernel from Debian) through jupyter_kernel_test and jupyter_client."""
from tests import kernellib


class RKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "r"
    language_name = "R"
    file_extension = ".r"
    tools = ("R",)
    code_hello_world = 'cat("hello, world\\n")'
    code_stderr = 'message("oops")'
    code_generate_error = 'stop("boom")'
    code_display_data = [{"code": "1 + 2", "mime": "text/plain"}]
    completion_samples = [{"text": "Sys.Dat", "matches": {"Sys.Date"}}]
    complete_code_samples = ["1 + 1", "f <- function(x) x"]
    incomplete_code_samples = ["f <- function(x) {", "c(1, 2,"]
    invalid_code_samples = ["1 +)"]
    code_interrupt = "while (TRUE) {}"
    code_after_interrupt = 'cat("alive\\n")'
    interrupt_status = ("error", "abort")  # IRkernel answers "abort"
    code_stdin = 's <- readline()\ncat("got", s, "\\n")'

    @classmethod
    def setUpClass(cls) -> None:
        import subprocess
        import unittest

        if kernellib.missing_tool(cls.tools) is None and subprocess.run(
                ["R", "--slave", "-e", "library(IRkernel)"], capture_output=True).returncode != 0:
            raise unittest.SkipTest("the R package IRkernel is not installed (Debian r-cran-irkernel)")
        super().setUpClass()
