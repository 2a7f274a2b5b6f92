"""Common handler behaviour: token auth, origin check, CORS, body limits, JSON errors."""
from __future__ import annotations

import json
import logging
from http.client import responses
from typing import Any

from tornado import web

from .. import auth
from ..state import GatewayState

log = logging.getLogger(__name__)


class GatewayMixin:
    """Auth/origin/CORS for both REST and websocket handlers."""

    request: Any
    settings: dict

    @property
    def gateway(self) -> GatewayState:
        return self.settings["gateway"]

    def check_access(self) -> None:
        """401 without the right token; 403 for a cross-origin request the config does not allow."""
        config = self.gateway.config
        if not auth.authenticated(self.request, config):
            raise web.HTTPError(401, "missing or invalid token (send `Authorization: token <T>` or ?token=<T>)")
        if not auth.origin_allowed(self.request, config):
            raise web.HTTPError(403, f"origin {self.request.headers.get('Origin')!r} is not allowed")


@web.stream_request_body
class APIHandler(GatewayMixin, web.RequestHandler):
    """JSON in, JSON out; bodies are streamed so oversized ones are refused before being read."""

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        for name, value in auth.cors_headers(self.gateway.config, self.request.headers.get("Origin")).items():
            self.set_header(name, value)

    def prepare(self) -> None:
        self._body = bytearray()
        self._too_large = False
        if self.request.method == "OPTIONS":
            return
        self.check_access()
        limit = self.gateway.config.max_body_size
        length = self.request.headers.get("Content-Length")
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                raise web.HTTPError(400, "invalid Content-Length") from None
            if too_big:
                raise web.HTTPError(413, f"request body larger than {limit} bytes")

    def data_received(self, chunk: bytes) -> None:
        if len(self._body) + len(chunk) > self.gateway.config.max_body_size:
            self._too_large = True
            self._body.clear()
        elif not self._too_large:
            self._body.extend(chunk)

    def json_body(self) -> dict:
        """The request body as a JSON object ({} when empty); 400 otherwise."""
        if self._too_large:
            raise web.HTTPError(413, f"request body larger than {self.gateway.config.max_body_size} bytes")
        if not self._body.strip():
            return {}
        try:
            body = json.loads(self._body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise web.HTTPError(400, f"request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "request body must be a JSON object")
        return body

    def write_json(self, obj: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(obj, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        reason = responses.get(status_code, "Unknown")
        if isinstance(exc, web.HTTPError):
            message = exc.log_message % exc.args if exc.log_message and exc.args else (exc.log_message or "")
            reason = exc.reason or reason
        elif exc is not None:
            message = f"{type(exc).__name__}: {exc}"
        else:
            message = ""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"reason": reason, "message": message}))

    def log_exception(self, typ, value, tb) -> None:  # 4xx are the client's business: one line, no traceback
        if isinstance(value, web.HTTPError) and value.status_code < 500:
            log.info("%s %s -> %d %s", self.request.method, self.request.uri.split("?")[0],
                     value.status_code, value.log_message or "")
        else:
            super().log_exception(typ, value, tb)

    def options(self, *args: Any, **kwargs: Any) -> None:
        self.set_status(200)  # Kernel Gateway answers preflights with 200
        self.finish()


class NotFoundHandler(APIHandler):
    """JSON 404 for every unknown path (after auth, so it does not reveal the URL space)."""

    def prepare(self) -> None:
        super().prepare()
        raise web.HTTPError(404, f"no such endpoint: {self.request.path}")
