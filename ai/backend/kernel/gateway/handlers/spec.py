"""/api/swagger.json and /api/swagger.yaml: an OpenAPI description of what this gateway serves.

Kernel Gateway clients and tools fetch these; the YAML variant is the same document (JSON is valid
YAML 1.2), so no YAML library is needed.
"""
from __future__ import annotations

import json

from ... import __version__
from .base import APIHandler

_ERR = {"description": "JSON error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_KID = {"name": "kernel_id", "in": "path", "required": True, "schema": {"type": "string"}}
_SID = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _op(summary: str, ok: str = "200", params: list | None = None) -> dict:
    return {"summary": summary, "parameters": params or [],
            "responses": {ok: {"description": "success"}, "4XX": _ERR}}


def openapi() -> dict:
    return {
        "openapi": "3.0.3",
        "info": {"title": "krunner-bridge gateway (Jupyter Kernel Gateway API)", "version": __version__},
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "Authorization"}},
            "schemas": {"Error": {"type": "object", "properties": {
                "reason": {"type": "string"}, "message": {"type": "string"}}}},
        },
        "security": [{"token": []}],
        "paths": {
            "/api": {"get": _op("Version")},
            "/api/status": {"get": _op("Kernel and connection counts, main kernel id")},
            "/api/kernelspecs": {"get": _op("All kernelspecs and the default")},
            "/api/kernelspecs/{name}": {"get": _op("One kernelspec", params=[
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}])},
            "/api/kernels": {"get": _op("Running kernels"), "post": _op("Start a kernel ({name, env})", "201")},
            "/api/kernels/{kernel_id}": {"get": _op("Kernel model", params=[_KID]),
                                         "delete": _op("Shut a kernel down", "204", [_KID])},
            "/api/kernels/{kernel_id}/interrupt": {"post": _op("Interrupt", "204", [_KID])},
            "/api/kernels/{kernel_id}/restart": {"post": _op("Restart", "200", [_KID])},
            "/api/kernels/{kernel_id}/channels": {"get": _op("Websocket (v1.kernel.websocket.jupyter.org or JSON)",
                                                             "101", [_KID])},
            "/api/sessions": {"get": _op("Sessions"), "post": _op("Create a session", "201")},
            "/api/sessions/{session_id}": {"get": _op("One session", params=[_SID]),
                                           "patch": _op("Rename / change kernel", params=[_SID]),
                                           "delete": _op("Delete (shuts its kernel down)", "204", [_SID])},
        },
    }


class SpecHandler(APIHandler):
    def get(self, fmt: str) -> None:
        if fmt == "yaml":
            self.set_header("Content-Type", "text/yaml")
        self.finish(json.dumps(openapi(), indent=1))
