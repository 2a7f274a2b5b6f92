"""The Octave kernel (octave_kernel + real errors) through jupyter_kernel_test and jupyter_client.

Octave runs on a pty, so stderr arrives as stdout: there is no stderr sample."""
from tests import kernellib


class OctaveKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "octave"
    language_name = "octave"
    file_extension = ".m"
    tools = ("octave-cli",)
    modules = ("octave_kernel",)
    code_hello_world = 'disp("hello, world")'
    code_generate_error = 'error("boom")'
    completion_samples = [{"text": "fflus", "matches": {"fflush"}}]
    code_interrupt = "while true, end"
    code_after_interrupt = 'disp("alive")'
    code_stdin = 's = input("name? ", "s");\ndisp(["got " s])'
