"""The Bash kernel of the `shell` kernelspec: `shell.kernel.ShellKernel` (bash_kernel plus stdin,
is_complete and errors as errors), started and driven faster (`python -m ...bash.kernel -f CONN`).

bash_kernel spends 50 ms of pexpect's send pause on every line it writes to bash: ~100 ms per
cell (the cell, then `echo $?`) and ~2.5 s at start (its display helpers are ~40 lines). Here
bash runs without that pause, and it is spawned before ipykernel is imported, so reading its rc
files overlaps the kernel's own imports; the kernel's ports listen before those imports too, and
IPython's terminal is not imported (`shell/earlystart.py`, docs/performance.md).
"""
from __future__ import annotations

import os
import sys

from ..shell.earlystart import adopting_app, listen_early, skip_ipython_terminal

if __name__ == "__main__":  # first of all
    listen_early(sys.argv)
    skip_ipython_terminal()

import pexpect  # noqa: E402

from ..kernelbase.early import spawn_early, spawn_repl, take_early  # noqa: E402

BASHRC = os.path.join(os.path.dirname(pexpect.__file__), "bashrc.sh")  # pexpect's: resets PS1
SPAWN = {"echo": False, "encoding": "utf-8", "codec_errors": "replace"}

if __name__ == "__main__":  # before the heavy imports below
    spawn_early("bash", "bash", ["--rcfile", BASHRC], **SPAWN)

from bash_kernel.display import build_cmds  # noqa: E402

from ..kernelbase.common import StdinWatch  # noqa: E402
from ..shell.kernel import ShellKernel, StdinAwareWrapper  # noqa: E402


class QuickShellKernel(ShellKernel):
    """ShellKernel whose bash is started early and written to without pauses."""

    def _start_bash(self) -> None:
        child = take_early("bash") or spawn_repl("bash", ["--rcfile", BASHRC], **SPAWN)
        # bash hides \[\] when it draws the prompt, so `env` printing PS1 is not taken for one
        ps1, ps2 = self.unique_prompt + "\\[\\]>", self.unique_prompt + "\\[\\]+"
        self.bashwrapper = StdinAwareWrapper(
            child, "\\$", f"PS1='{ps1}' PS2='{ps2}' PROMPT_COMMAND=''", self.unique_prompt,
            extra_init_cmd="export PAGER=cat", line_output_callback=self.process_output,
            on_quiet=self._on_quiet)
        self.bashwrapper.run_command("bind 'set enable-bracketed-paste off' >/dev/null 2>&1 || true")
        self.bashwrapper.run_command(build_cmds())  # bash_kernel's display helpers
        self._watch = StdinWatch(child.pid)


if __name__ == "__main__":
    import logging

    from ipykernel.kernelapp import IPKernelApp

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    adopting_app(IPKernelApp).launch_instance(kernel_class=QuickShellKernel)
