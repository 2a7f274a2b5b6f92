"""/api/sessions: notebook path ⇄ kernel, in jupyter_server's shape (plus KG's `notebook` key)."""
from __future__ import annotations

import logging

from tornado import web

from ..sessions import SessionRow
from .base import APIHandler
from .kernels import start_kernel

log = logging.getLogger(__name__)


class _SessionBase(APIHandler):
    def model(self, row: SessionRow) -> dict:
        return row.model(self.gateway.kernel_model(row.kernel_id))

    def row(self, session_id: str) -> SessionRow:
        row = self.gateway.sessions.get(session_id)
        if row is None or row.kernel_id not in self.gateway.hub.kernel_ids():
            raise web.HTTPError(404, f"Session not found: {session_id}")
        return row

    async def kernel_for(self, spec: object) -> str:
        """An existing kernel ({"id"}) or a new one ({"name", "env"})."""
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise web.HTTPError(400, "`kernel` must be an object with `id` or `name`")
        kernel_id = spec.get("id")
        if kernel_id:
            self.gateway.kernel_manager(str(kernel_id))
            return str(kernel_id)
        return await start_kernel(self, spec.get("name"), spec.get("env"))

    async def release_kernel(self, kernel_id: str) -> None:
        """Shut a kernel down when no session uses it any more (never the main kernel)."""
        state = self.gateway
        if kernel_id == state.hub.main_kernel_id or any(r.kernel_id == kernel_id for r in state.sessions.rows()):
            return
        if kernel_id in state.hub.kernel_ids():
            await state.hub.shutdown_kernel(kernel_id)
            await state.forget_kernel(kernel_id)


def _fields(body: dict) -> tuple[str, str, str]:
    notebook = body.get("notebook") if isinstance(body.get("notebook"), dict) else {}
    path = body.get("path", notebook.get("path", ""))
    name = body.get("name", notebook.get("name", "")) or ""
    type_ = body.get("type", "notebook") or "notebook"
    for what, value in (("path", path), ("name", name), ("type", type_)):
        if not isinstance(value, str):
            raise web.HTTPError(400, f"`{what}` must be a string")
    return path, name, type_


class SessionRootHandler(_SessionBase):
    def get(self) -> None:
        state = self.gateway
        if not state.config.list_kernels:
            raise web.HTTPError(403, "listing sessions is disabled (GatewayConfig.list_kernels)")
        alive = set(state.hub.kernel_ids())
        self.write_json([self.model(r) for r in state.sessions.rows() if r.kernel_id in alive])

    async def post(self) -> None:
        body = self.json_body()
        path, name, type_ = _fields(body)
        state = self.gateway
        existing = state.sessions.find(path)
        if existing is not None and existing.kernel_id in state.hub.kernel_ids():
            self.write_json(self.model(existing), status=201)
            return
        kernel_id = await self.kernel_for(body.get("kernel"))
        row = state.sessions.create(path, name or path.rsplit("/", 1)[-1], type_, kernel_id)
        self.set_header("Location", f"{state.config.base_url}api/sessions/{row.id}")
        self.write_json(self.model(row), status=201)


class SessionHandler(_SessionBase):
    def get(self, session_id: str) -> None:
        self.write_json(self.model(self.row(session_id)))

    async def patch(self, session_id: str) -> None:
        row = self.row(session_id)
        body = self.json_body()
        path, name, type_ = _fields({"path": row.path, "name": row.name, "type": row.type, **body})
        row.path, row.name, row.type = path, name, type_
        if "kernel" in body:
            old = row.kernel_id
            row.kernel_id = await self.kernel_for(body["kernel"])
            if old != row.kernel_id:
                await self.release_kernel(old)
        self.write_json(self.model(row))

    async def delete(self, session_id: str) -> None:
        row = self.row(session_id)
        self.gateway.sessions.delete(session_id)
        await self.release_kernel(row.kernel_id)
        self.set_status(204)
        self.finish()
