"""`PreloadedProvisioner`: jupyter_client's local provisioner, except that the runner's main kernel
is the interpreter `preload.py` started before the runner's imports
(docs/performance.md#the-preloaded-main-kernel).

jupyter_client finds provisioners by entry point (`jupyter_client.kernel_provisioners`, declared in
setup.cfg) and by the `kernel_provisioner` stanza of a kernelspec's metadata; the runner puts that
stanza on the main kernel's spec only (`RunnerKernelSpecManager.provisioner_overrides`). Every other
launch, a restart included, is LocalProvisioner's own.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pathlib
from collections.abc import Iterator
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import LocalProvisioner
from jupyter_client.provisioning.factory import KernelProvisionerFactory

from . import preload

NAME = "krunner-preloaded-provisioner"
log = logging.getLogger(__name__)


def available() -> bool:
    """Whether jupyter_client can find this provisioner (the package's entry points are installed)."""
    return NAME in KernelProvisionerFactory.instance().provisioners


@contextlib.contextmanager
def preloaded_for(spec_manager: Any, kernel_name: str) -> Iterator[None]:
    """Launches of `kernel_name` inside the block are offered the preloaded interpreter, if there is
    one; afterwards the spec is as before and an interpreter nothing took is stopped.
    `spec_manager` is the runner's `RunnerKernelSpecManager`."""
    if preload.waiting():
        if available():
            spec_manager.provisioner_overrides = {kernel_name: NAME}
        else:
            log.info("main kernel launched as usual, not preloaded: %s is not installed as a jupyter_client "
                     "provisioner (entry points of the krunner-bridge package)", NAME)
    try:
        yield
    finally:
        spec_manager.provisioner_overrides = {}
        preload.discard()


class PreloadedProvisioner(LocalProvisioner):  # type: ignore[misc]
    """Launches through the preloaded interpreter when there is one that can be the kernel."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        process = await preload.take(cmd, kwargs)
        if process is None:
            return await super().launch_kernel(cmd, **kwargs)
        self.process = process  # what LocalProvisioner.launch_kernel records of the process it starts
        self.pid = process.pid
        try:
            self.pgid = os.getpgid(process.pid)
        except OSError:
            self.pgid = None
        self.cwd = kwargs.get("cwd", pathlib.Path.cwd())
        return self.connection_info
