"""Token authentication, origin checks and CORS headers, shared by REST and websocket handlers.

Browsers cannot set headers on websockets, hence `?token=`. Preflight `OPTIONS` requests carry no
credentials by design, so they are answered without a token (Kernel Gateway answers 403 there,
which breaks cross-origin browsers).
"""
from __future__ import annotations

import hmac
import re

from tornado.httputil import HTTPServerRequest

from ..origin import OriginPolicy
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
    """The request carries the configured token (compared in constant time: a guess byte by byte
    learns nothing from the response time)."""
    if not config.token:
        return True
    return hmac.compare_digest(request_token(request).encode(), config.token.encode())


def origin_policy(config: GatewayConfig) -> OriginPolicy:
    """Same host, `allow_origins`, `allow_origin` (also the CORS value) and `allow_origin_pat`."""
    allowed = [*config.allow_origins, *([config.allow_origin] if config.allow_origin else [])]
    return OriginPolicy(allowed, config.allow_origin_pat)


def origin_allowed(request: HTTPServerRequest, config: GatewayConfig) -> bool:
    """No Origin (non-browser client), same host, or an origin the config allows (docs/security.md)."""
    return origin_policy(config).allows(request.headers.get("Origin"), request.headers.get("Host"))


def cors_headers(config: GatewayConfig, request_origin: str | None) -> dict[str, str]:
    """The Access-Control-* headers configured (each only when set)."""
    headers = {}
    if config.allow_origin:
        allowed = config.allow_origin
        if allowed == "*" and request_origin and config.allow_credentials.lower() == "true":
            allowed = request_origin  # '*' is not valid together with credentials
        headers["Access-Control-Allow-Origin"] = allowed
    elif config.allow_origin_pat and request_origin and re.fullmatch(config.allow_origin_pat, request_origin):
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
