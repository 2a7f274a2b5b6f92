"""Model services of inference sessions (docs/services.md#model-services): config parsing and
the health loop.

The health probe runs on the event loop (tornado's async HTTP client), and any status code can be
the expected one (the original's urllib raised for 4xx/5xx).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from .definitions import ServiceDefinition, parse_actions
from .interpolation import check_template_syntax
from .errors import InvalidServiceDefinition

log = logging.getLogger(__name__)


@dataclass
class HealthCheck:
    interval: float = 10.0
    path: str = "/health"
    max_retries: int = 10
    max_wait_time: float = 15.0
    expected_status_code: int = 200
    initial_delay: float = 60.0  # used by the agent side; the runner probes from the start

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> HealthCheck:
        hc = cls()
        try:
            for key in ("interval", "max_wait_time", "initial_delay"):
                if raw.get(key) is not None:
                    setattr(hc, key, float(raw[key]))
            for key in ("max_retries", "expected_status_code"):
                if raw.get(key) is not None:
                    setattr(hc, key, int(raw[key]))
            if raw.get("path") is not None:
                hc.path = str(raw["path"])
        except (TypeError, ValueError) as e:
            raise InvalidServiceDefinition(f"invalid health_check: {e}") from e
        if not hc.path.startswith("/"):
            hc.path = "/" + hc.path
        return hc


@dataclass
class ModelService:
    model_name: str
    model_path: str
    port: int
    definition: ServiceDefinition
    health: HealthCheck | None  # None: no health loop, healthy right after start


def parse_model_config(raw: Any) -> ModelService:
    """The agent's `ModelConfig` JSON; raises `InvalidServiceDefinition` for anything unusable."""
    if not isinstance(raw, dict):
        raise InvalidServiceDefinition("the model config must be a JSON object")
    service = raw.get("service")
    if not isinstance(service, dict):
        raise InvalidServiceDefinition("the model config has no 'service'")
    model_name = raw.get("name") or raw.get("model_name")
    if not isinstance(model_name, str) or not model_name:
        raise InvalidServiceDefinition("the model config has no 'name'")
    try:
        port = int(service["port"])
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidServiceDefinition("the model service has no valid 'port'") from e
    command = service.get("start_command")
    if not (isinstance(command, str) and command) and not (
        isinstance(command, list) and command and all(isinstance(c, str) for c in command)
    ):
        raise InvalidServiceDefinition("the model service has no valid 'start_command'")
    shell = service.get("shell") or "/bin/bash"
    defn = ServiceDefinition(
        name=f"{model_name}-{port}", command=command, shell=shell,
        prestart_actions=parse_actions(service.get("pre_start_actions") or []),
    )
    check_template_syntax([command] if isinstance(command, str) else command)
    hc_raw = service.get("health_check")
    health = HealthCheck.from_config(hc_raw) if isinstance(hc_raw, dict) and hc_raw.get("enable") else None
    return ModelService(model_name, str(raw.get("model_path") or ""), port, defn, health)


async def probe(port: int, hc: HealthCheck, host: str = "127.0.0.1") -> bool:
    """One GET of the health path; healthy iff the status equals the expected one."""
    request = HTTPRequest(
        f"http://{host}:{port}{hc.path}", method="GET",
        connect_timeout=hc.max_wait_time, request_timeout=hc.max_wait_time, follow_redirects=False,
    )
    try:
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
    except Exception as e:  # connection refused, timeouts, DNS...
        log.debug("health probe of port %d failed: %r", port, e)
        return False
    return response.code == hc.expected_status_code


async def health_loop(
    model_name: str, port: int, hc: HealthCheck, report: Callable[[bool], Awaitable[None]],
) -> None:
    """Probe every `interval` s; report each turn to healthy, and unhealthy after `max_retries` failures."""
    loop = asyncio.get_running_loop()
    state: bool | None = None
    failures = 0
    while True:
        started = loop.time()
        if await probe(port, hc):
            failures = 0
            if state is not True:
                state = True
                log.info("model service %s is healthy", model_name)
                await report(True)
        else:
            failures += 1
            if failures > hc.max_retries and state is not False:
                state = False
                log.warning("model service %s is unhealthy (%d failed probes)", model_name, failures)
                await report(False)
        await asyncio.sleep(max(0.0, hc.interval - (loop.time() - started)))
