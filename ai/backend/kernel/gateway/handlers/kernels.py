"""/api/kernels: list, start, get, delete, interrupt, restart — all on the runner's KernelHub."""
from __future__ import annotations

import asyncio
import logging
import os

from jupyter_client.kernelspec import NoSuchKernel
from jupyter_core.utils import ensure_async
from tornado import web

from .base import APIHandler

log = logging.getLogger(__name__)


def _check_env(env: object) -> dict[str, str] | None:
    if env is None:
        return None
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise web.HTTPError(400, "`env` must be an object of string values")
    return env


async def start_kernel(handler: APIHandler, name: object, env: object) -> str:
    """Validate and start a kernel in the hub (shared by POST /api/kernels and /api/sessions)."""
    state = handler.gateway
    if name is None or name == "":
        name = state.default_kernel_name()
    if not isinstance(name, str):
        raise web.HTTPError(400, "`name` must be a kernelspec name (string)")
    client_env = _check_env(env)
    limit = state.config.max_kernels
    # The runner's main kernel is not the clients' to spend: only kernels clients started count.
    if limit and len(state.client_kernel_ids()) + state.pending_starts >= limit:
        raise web.HTTPError(403, f"Resource Limit: at most {limit} kernels started through the gateway",
                            reason="Resource Limit")
    try:
        state.hub.spec_manager.get_kernel_spec(name)
    except NoSuchKernel:
        raise web.HTTPError(404, f"Kernel spec does not exist: {name}") from None
    cwd = None
    workdir = (client_env or {}).get("KERNEL_WORKING_DIR")
    if state.config.honor_kernel_working_dir and workdir and os.path.isdir(workdir):
        cwd = workdir
    state.pending_starts += 1
    try:
        kernel_id = await state.hub.start_kernel(name, env=state.kernel_env(client_env), cwd=cwd)
    except Exception as exc:
        log.exception("starting kernel %s failed", name)
        raise web.HTTPError(500, f"starting kernel {name!r} failed: {exc}") from None
    finally:
        state.pending_starts -= 1
    state.watch(kernel_id)
    return kernel_id


class MainKernelHandler(APIHandler):
    def get(self) -> None:
        if not self.gateway.config.list_kernels:
            raise web.HTTPError(403, "listing kernels is disabled (GatewayConfig.list_kernels)")
        self.write_json(self.gateway.kernel_models())

    async def post(self) -> None:
        body = self.json_body()
        kernel_id = await start_kernel(self, body.get("name"), body.get("env"))
        self.set_header("Location", f"{self.gateway.config.base_url}api/kernels/{kernel_id}")
        self.write_json(self.gateway.kernel_model(kernel_id), status=201)


class KernelHandler(APIHandler):
    def get(self, kernel_id: str) -> None:
        self.write_json(self.gateway.kernel_model(kernel_id))

    async def delete(self, kernel_id: str) -> None:
        state = self.gateway
        state.kernel_manager(kernel_id)
        if kernel_id == state.hub.main_kernel_id and state.config.protect_main_kernel:
            # The main kernel belongs to the runner (the agent's session): a front-end that shuts it
            # down only lets go of it. Success, so that jupyter_server's exit (which shuts down every
            # kernel it knows, and stops on any error but 404) completes (docs/gateway.md#the-main-kernel).
            log.info("DELETE of the main kernel %s: released by the client, kept running for the agent", kernel_id)
            self.set_header("X-Krunner-Kernel", "kept")
            self.set_status(204)
            self.finish()
            return
        await state.hub.shutdown_kernel(kernel_id)
        await state.forget_kernel(kernel_id)
        self.set_status(204)
        self.finish()


class KernelActionHandler(APIHandler):
    async def post(self, kernel_id: str, action: str) -> None:
        state = self.gateway
        state.kernel_manager(kernel_id)
        act = state.watch(kernel_id)
        act.touch()
        if action == "interrupt":
            await ensure_async(state.hub.interrupt_kernel(kernel_id))
            self.set_status(204)
            self.finish()
            return
        try:
            await state.hub.restart_kernel(kernel_id)
        except Exception as exc:
            log.exception("restarting kernel %s failed", kernel_id)
            raise web.HTTPError(500, f"restarting kernel failed: {exc}") from None
        try:  # answer once the new process talks, as jupyter_server does
            await state.hub.wait_ready(kernel_id, timeout=state.config.kernel_info_timeout)
        except (RuntimeError, asyncio.TimeoutError) as exc:
            log.warning("kernel %s restarted but is not answering: %s", kernel_id, exc)
        else:
            if act.execution_state in (None, "starting", "restarting"):
                act.execution_state = "idle"
        self.write_json(state.kernel_model(kernel_id))
