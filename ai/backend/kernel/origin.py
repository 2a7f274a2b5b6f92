"""Which browser origins may open a websocket (web terminal, gateway kernels): see docs/security.md.

A browser attaches the page's `Origin` to every websocket it opens, and a websocket is not bound by
the same-origin policy: without this check any page the user visits could drive a shell or a kernel
on localhost (cross-site websocket hijacking). The rule:
  * no `Origin` header: allowed (non-browser clients: the agent, jupyter_client, curl);
  * the origin names the same host:port the request was sent to (`Host`): allowed;
  * the origin matches an entry of the allow-list: allowed; anything else, `null` included: refused.
Allow-list entries are exact origins (`https://proxy.example.com:8443`), patterns where `*` stands
for any run of characters except `/` (`https://*.apps.example.com`), or `*` alone (any origin).
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

ALLOW_ORIGINS_ENV = "KRUNNER_ALLOW_ORIGINS"
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def allow_list_from_env(environ: dict[str, str] | None = None) -> list[str]:
    """The comma-separated allow-list in $KRUNNER_ALLOW_ORIGINS (empty: same host only)."""
    text = (environ if environ is not None else os.environ).get(ALLOW_ORIGINS_ENV, "")
    return [item.strip() for item in text.split(",") if item.strip()]


def _host_port(netloc: str, scheme: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS.get(scheme, 0)


def same_host(origin: str, host_header: str) -> bool:
    """`origin` (scheme://host[:port]) names the host and port in the request's Host header."""
    scheme = urlsplit(origin).scheme.lower() if "://" in origin else ""
    if scheme not in _DEFAULT_PORTS:
        return False
    mine = _host_port(origin.split("://", 1)[1].rstrip("/"), scheme)
    theirs = _host_port(host_header.strip(), scheme) if host_header else None
    return mine is not None and mine == theirs


def _normalise(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


class OriginPolicy:
    """Same host, plus `allowed` entries (exact, `*`-patterns) and an optional regular expression."""

    def __init__(self, allowed: Iterable[str] = (), pattern: str = "") -> None:
        self.any = False
        self.exact: set[str] = set()
        globs: list[str] = []
        for entry in allowed:
            entry = _normalise(entry)
            if not entry:
                continue
            if entry == "*":
                self.any = True
            elif "*" in entry:
                globs.append("[^/]*".join(re.escape(part) for part in entry.split("*")))
            else:
                self.exact.add(entry)
        self._globs = re.compile("|".join(f"(?:{g})" for g in globs)) if globs else None
        self._pattern = re.compile(pattern) if pattern else None

    def allows(self, origin: str | None, host_header: str | None) -> bool:
        if origin is None or origin == "":
            return True
        if self.any:
            return True
        if origin != "null" and same_host(origin, host_header or ""):
            return True
        norm = _normalise(origin)
        if norm in self.exact:
            return True
        if self._globs is not None and self._globs.fullmatch(norm):
            return True
        return bool(self._pattern is not None and self._pattern.fullmatch(origin))
