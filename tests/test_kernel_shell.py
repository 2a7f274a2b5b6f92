"""The Bash kernel (bash_kernel + stdin and is_complete) through jupyter_kernel_test and jupyter_client.

Bash runs on a pty, so stderr arrives as stdout: there is no stderr sample."""
from tests import kernellib


class ShellKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "shell"
    language_name = "bash"
    file_extension = ".sh"
    tools = ("bash",)
    modules = ("bash_kernel",)
    code_hello_world = 'echo "hello, world"'
    code_generate_error = "false"
    completion_samples = [{"text": "ech", "matches": {"echo"}}]
    complete_code_samples = ["echo 1", "for i in 1 2; do echo $i; done"]
    incomplete_code_samples = ["if true; then", "for i in 1 2; do"]
    invalid_code_samples = ["fi"]
    code_interrupt = "while true; do :; done"
    code_after_interrupt = "echo alive"
    code_stdin = 'read s; echo "got $s"'
