"""The runner's subsystems, built after the agent sockets are bound (docs/performance.md).

Answering the agent's `status` needs only zmq and the options; the kernel hub (jupyter_client),
batch, the query bridge and the services cost more to import than the interpreter takes to start.
They are imported in a thread, so the receive loop answers `status` meanwhile, the kernel's first
(it has the longest way to ready), and built on the loop from plain values (docs/architecture.md,
"Start-up and shutdown order").
"""
from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traitlets.config import Configurable

from .agentlink import AgentLink
from .languages import Language

if TYPE_CHECKING:
    from .batch import BatchExecutor
    from .kernels import KernelHub
    from .services.manager import ServiceManager

log = logging.getLogger(__name__)

# Imported in a thread once the sockets are bound: first what the main kernel needs (the gateway's
# server joins them when a port is configured), then, while the kernel starts, batch and services.
KERNEL_MODULES = ("ai.backend.kernel.kernels", "ai.backend.kernel.bridge")
GATEWAY_MODULE = "ai.backend.kernel.gateway.app"
OTHER_MODULES = ("ai.backend.kernel.batch", "ai.backend.kernel.services.manager")
# Ops the receive loop serves before the subsystems exist, and ops that need the main kernel only;
# the others wait for batch and the services (and have them built at once, runner.py).
EARLY_OPS = frozenset({"status", "input", "event"})
KERNEL_OPS = frozenset({"code", "complete"})


def import_modules(names: tuple[str, ...]) -> None:
    for name in names:
        importlib.import_module(name)


def prepare_kernel_launch(app: Configurable, modules: tuple[str, ...]) -> None:
    """Import the kernel's modules and make jupyter_client's provisioner factory, which reads the
    entry points of every installed package (tens of ms, off the loop)."""
    import_modules(modules)
    from jupyter_client.provisioning import KernelProvisionerFactory

    KernelProvisionerFactory.instance(parent=app)


async def make_hub(app: Configurable, *, runtime_dir: str, work_dir: Path, with_gateway: bool) -> KernelHub:
    """The kernel hub, configured by the application `app`, its modules imported in a thread."""
    await asyncio.to_thread(prepare_kernel_launch, app, KERNEL_MODULES + ((GATEWAY_MODULE,) if with_gateway else ()))
    from jupyter_core.utils import ensure_dir_exists

    from .kernels import KernelHub

    ensure_dir_exists(runtime_dir, 0o700)  # connection files go there; a fresh HOME lacks it
    return KernelHub(parent=app, connection_dir=runtime_dir, default_cwd=str(work_dir))


async def import_batch_and_services() -> None:
    """Their modules, imported in a thread as soon as the main kernel's process runs: the imports
    then overlap the kernel's init, whose core they do not use. Done later, when the kernel is
    ready, they held the loop's GIL just when a first query's output could flood in, and that
    output piled up in ZeroMQ's queue (the runner's RSS +120 MB once in 5 such floods, against
    +30–38 MB this way)."""
    await asyncio.to_thread(import_modules, OTHER_MODULES)


async def make_batch_and_services(app: Configurable, link: AgentLink, language: Language, *, lang: str,
                                  work_dir: Path, config_dir: Path, child_env: dict[str, str], runtime_path: str,
                                  intrinsic_ports: Mapping[str, int],
                                  gateway_token: str) -> tuple[BatchExecutor, ServiceManager]:
    """The batch executor and the service manager, configured by `app`, imported in a thread."""
    await import_batch_and_services()  # at once when the main kernel's launch already did it
    from .batch import BatchExecutor
    from .services.manager import ServiceManager

    batch = BatchExecutor(link, parent=app, language=language, work_dir=work_dir, runtime_path=runtime_path,
                          child_env=child_env)
    services = ServiceManager(
        link, parent=app, lang=lang, work_dir=work_dir, config_dir=config_dir, runtime_path=runtime_path,
        child_env=child_env, intrinsic_ports=intrinsic_ports, gateway_token=gateway_token)
    return batch, services


async def subsystems_due(main_kernel: asyncio.Future[Any], wanted: asyncio.Event, stop: asyncio.Event,
                         timeout: float) -> bool:
    """Wait until batch and the services are due: once the main kernel is ready (or failed), at
    once when an op needs them (`wanted`), after `timeout` s at the latest. On 2 cores anything else
    that runs while the kernel starts delays its first answer, even at idle priority
    (docs/performance.md#cold-paths-runner-start-up-and-first-query). False: stop instead."""
    waiters = [asyncio.ensure_future(event.wait()) for event in (wanted, stop)]
    try:
        await asyncio.wait((main_kernel, *waiters), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    if not main_kernel.done() and not stop.is_set():
        log.debug("batch and services start before the main kernel is ready (%s)",
                  "an op needs them" if wanted.is_set() else "subsystems_wait")
    return not stop.is_set()


async def bounded(awaitable: Any, timeout: float, what: str) -> None:
    """Await one shutdown step for at most `timeout` s; log (never raise) when it fails or is late."""
    try:
        await asyncio.wait_for(awaitable, timeout)
    except (TimeoutError, asyncio.CancelledError):
        log.warning("shutdown of %s took longer than %.1f s; moving on", what, timeout)
    except Exception:
        log.exception("shutdown of %s failed", what)


async def guarded(coro: Coroutine[Any, Any, Any], name: str) -> Any:
    """A background task's body: its failure is logged with its name, never lost in a task."""
    try:
        return await coro
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background task %s failed", name)
