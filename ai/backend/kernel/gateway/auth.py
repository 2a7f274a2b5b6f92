"""Token authentication, origin checks and CORS headers, shared by REST and websocket handlers.

Browsers cannot set headers on websockets, hence `?token=`. Preflight `OPTIONS` requests carry no
credentials by design, so they are answered without a token (Kernel Gateway answers 403 there,
which breaks cross-origin browsers).
"""
from __future__ import annotations

import hmac
import re
from urllib.parse import urlparse

from tornado.httputil import HTTPServerRequest

from .config import GatewayConfig

_SCHEMES = ("token", "bearer")


def request_token(request: HTTPServerRequest) -> str:
    """The token a request carries (header first, then the query string), or ''."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in _SCHEMES and value.strip():
        return value.strip()
    values = request.query_arguments.get("token")
    return values[0].decode("utf-8", "replace") if values else ""


def authenticated(request: HTTPServerRequest, config: GatewayConfig) -> bool:
    if not config.token:
        return True
    return hmac.compare_digest(request_token(request).encode(), config.token.encode())


def origin_allowed(request: HTTPServerRequest, config: GatewayConfig) -> bool:
    """No Origin (non-browser client), same host, or an origin the config allows."""
    origin = request.headers.get("Origin")
    if not origin:
        return True
    if config.allow_origin == "*" or origin == config.allow_origin:
        return True
    if config.allow_origin_pat and re.match(config.allow_origin_pat, origin):
        return True
    host = request.headers.get("Host", "")
    return urlparse(origin).netloc.lower() == host.lower()


def cors_headers(config: GatewayConfig, request_origin: str | None) -> dict[str, str]:
    """The Access-Control-* headers configured (each only when set)."""
    headers = {}
    if config.allow_origin:
        allowed = config.allow_origin
        if allowed == "*" and request_origin and config.allow_credentials.lower() == "true":
            allowed = request_origin  # '*' is not valid together with credentials
        headers["Access-Control-Allow-Origin"] = allowed
    elif config.allow_origin_pat and request_origin and re.match(config.allow_origin_pat, request_origin):
        headers["Access-Control-Allow-Origin"] = request_origin
    for name, value in (
        ("Access-Control-Allow-Credentials", config.allow_credentials),
        ("Access-Control-Allow-Headers", config.allow_headers),
        ("Access-Control-Allow-Methods", config.allow_methods),
        ("Access-Control-Expose-Headers", config.expose_headers),
        ("Access-Control-Max-Age", config.max_age),
    ):
        if value:
            headers[name] = value
    return headers
