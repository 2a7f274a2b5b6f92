"""Drive a runner exactly as Backend.AI's agent does, with the agent's OWN code-runner class.

`AgentClient` wraps `ai.backend.agent.kernel.AbstractCodeRunner` from the real backend.ai-agent
wheel (see loader.py): our subclass only supplies the two addresses, as the agent's
`DockerCodeRunner` does, and each method calls the agent method the agent itself would call
(`AbstractKernel.execute` is invoked as-is; the rest mirror `DockerKernel`'s one-line wrappers).

    async with AgentClient(repl_in_port, repl_out_port) as agent:
        results = await agent.execute_until_done(None, "query", "print(1)")
        assert results[-1]["status"] == "finished"
        assert stdout_of(results) == "1\n"

Results are returned the way a REST/SDK client sees them: JSON round-tripped (tuples -> lists).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from .loader import AGENT_VERSION, load_agent_kernel, wheel_dir

__all__ = [
    "AGENT_VERSION",
    "AgentClient",
    "console_items",
    "load_agent_kernel",
    "stderr_of",
    "stdout_of",
    "wheel_dir",
]

DEFAULT_API_VERSION = 3  # what the manager sends for API v4 (docs/protocol.md#the-agent-side)
DEFAULT_FLUSH_TIMEOUT = 2.0  # the REST API's flush timeout

InputCallback = Callable[[dict[str, Any]], "str | Awaitable[str]"]

_runner_class: type | None = None

Frame = tuple[str, bytes, float]  # (type, payload, time.monotonic())


def _frame(parts: Sequence[bytes]) -> Frame:
    return (bytes(parts[0]).decode("ascii", "replace"), bytes(parts[1]), time.monotonic())


def runner_class() -> type:
    """Our `AbstractCodeRunner` subclass, written the way the agent's DockerCodeRunner is.

    Besides the addresses it only adds a passive frame log: its socket pair is the agent's own
    `SocketPair` whose send/recv are wrapped to append every frame to `sent`/`received` (so tests
    can see frames that the agent's logic drops). Nothing in the protocol path changes."""
    global _runner_class
    if _runner_class is None:
        mod = load_agent_kernel()

        class RecordingSocketPair(mod.SocketPair):  # type: ignore[name-defined,misc]
            def __init__(
                self, input_sock: Any, output_sock: Any, sent: list[Frame], received: list[Frame]
            ) -> None:
                super().__init__(input_sock, output_sock)
                self.sent = sent
                self.received = received

            async def send_multipart(self, msg_parts: Sequence[bytes]) -> None:
                await super().send_multipart(msg_parts)
                if len(msg_parts) == 2:
                    self.sent.append(_frame(msg_parts))

            async def recv_multipart(self) -> list[bytes]:
                data = await super().recv_multipart()
                if len(data) == 2:
                    self.received.append(_frame(data))
                return data

        class KrunnerCodeRunner(mod.AbstractCodeRunner):  # type: ignore[name-defined,misc]
            def __init__(
                self,
                kernel_id: Any,
                session_id: Any,
                event_producer: Any,
                *,
                kernel_host: str,
                repl_in_port: int,
                repl_out_port: int,
                exec_timeout: float = 0,
                client_features: frozenset[str] | None = None,
            ) -> None:
                super().__init__(
                    kernel_id,
                    session_id,
                    event_producer,
                    exec_timeout=exec_timeout,
                    client_features=client_features,
                )
                self.kernel_host = kernel_host
                self.repl_in_port = repl_in_port
                self.repl_out_port = repl_out_port
                self.frames_sent: list[Frame] = []
                self.frames_received: list[Frame] = []

            async def _create_sockets(self) -> Any:
                pair = await super()._create_sockets()
                return RecordingSocketPair(
                    pair.input_sock, pair.output_sock, self.frames_sent, self.frames_received
                )

            async def get_repl_in_addr(self) -> str:
                return f"tcp://{self.kernel_host}:{self.repl_in_port}"

            async def get_repl_out_addr(self) -> str:
                return f"tcp://{self.kernel_host}:{self.repl_out_port}"

        _runner_class = KrunnerCodeRunner
    return _runner_class


class _KernelShim:
    """The two attributes `AbstractKernel.execute`/`ping` read from `self`."""

    def __init__(self, kernel_id: Any, runner: Any) -> None:
        self.kernel_id = kernel_id
        self.runner = runner


def _jsonish(obj: Any) -> Any:
    """What the user gets over REST: the agent's result after a JSON round trip."""
    return json.loads(json.dumps(obj))


class AgentClient:
    """One agent-side connection to a runner's repl-in (PULL) and repl-out (PUSH) ports."""

    def __init__(
        self,
        repl_in_port: int,
        repl_out_port: int,
        *,
        host: str = "127.0.0.1",
        api_version: int = DEFAULT_API_VERSION,
        client_features: frozenset[str] | None = None,
        exec_timeout: float = 0,
        call_timeout: float = 120.0,
    ) -> None:
        self.repl_in_port = repl_in_port
        self.repl_out_port = repl_out_port
        self.host = host
        self.api_version = api_version
        self.exec_timeout = exec_timeout
        self.call_timeout = call_timeout  # harness safety net: the agent itself waits forever
        self.module = load_agent_kernel()
        self.client_features = (
            self.module.default_client_features if client_features is None else client_features
        )
        self.kernel_id = uuid.uuid4()
        self.session_id = uuid.uuid4()
        self.runner: Any = None
        self._kernel: _KernelShim | None = None

    # --- lifecycle -------------------------------------------------------------------------
    async def open(self) -> AgentClient:
        """Create the code runner like `DockerKernel.create_code_runner` (starts ping/read tasks)."""
        self.runner = await runner_class().new(
            self.kernel_id,
            self.session_id,
            None,  # event producer: unused by the code runner
            kernel_host=self.host,
            repl_in_port=self.repl_in_port,
            repl_out_port=self.repl_out_port,
            exec_timeout=self.exec_timeout,
            client_features=self.client_features,
        )
        self._kernel = _KernelShim(self.kernel_id, self.runner)
        return self

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.close()

    async def __aenter__(self) -> AgentClient:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- frame log (passive) -----------------------------------------------------------------
    @property
    def sent(self) -> list[Frame]:
        """Every 2-frame message the agent code sent: (op, payload, monotonic time)."""
        return self.runner.frames_sent

    @property
    def received(self) -> list[Frame]:
        """Every 2-frame message the agent code received, including those it then dropped."""
        return self.runner.frames_received

    def received_types(self, *, include_status: bool = False) -> list[str]:
        """Types of the received frames in order (the periodic `status` pings left out by default)."""
        return [t for t, _, _ in self.received if include_status or t != "status"]

    def _bounded(self, aw: Awaitable[Any], timeout: float | None) -> Awaitable[Any]:
        t = self.call_timeout if timeout is None else timeout
        return asyncio.wait_for(aw, t) if t and t > 0 else aw

    # --- execution -------------------------------------------------------------------------
    async def execute(
        self,
        run_id: str | None,
        mode: str,
        code: str = "",
        opts: Mapping[str, Any] | None = None,
        *,
        flush_timeout: float = DEFAULT_FLUSH_TIMEOUT,
        api_version: int | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One REST `execute` call: the agent's own `AbstractKernel.execute` (attach, feed, collect)."""
        result = await self._bounded(
            self.module.AbstractKernel.execute(
                self._kernel,
                run_id,
                mode,
                code,
                opts=dict(opts or {}),
                api_version=api_version or self.api_version,
                flush_timeout=flush_timeout,
            ),
            timeout,
        )
        return _jsonish(result)

    async def execute_until_done(
        self,
        run_id: str | None,
        mode: str,
        code: str = "",
        opts: Mapping[str, Any] | None = None,
        flush_timeout: float = DEFAULT_FLUSH_TIMEOUT,
        gap: float = 0.05,
        *,
        on_waiting_input: InputCallback | None = None,
        api_version: int | None = None,
        timeout: float | None = None,
        max_calls: int = 10_000,
    ) -> list[dict[str, Any]]:
        """Loop like a REST client (docs/protocol.md#the-agent-side): `continue` after `continued`/`clean-finished`/
        `build-finished`, answer `waiting-input` via `on_waiting_input(result) -> text` (without a
        callback the list ends at `waiting-input`); stop at `finished`/`exec-timeout`.
        `gap` seconds pass between calls (a REST round trip). Returns every result in order;
        raises TimeoutError after `timeout` seconds overall (default: call_timeout)."""
        if run_id is None and mode in ("query", "batch"):
            run_id = secrets.token_hex(8)  # as the manager/stream API do
        deadline = time.monotonic() + (self.call_timeout if timeout is None else timeout)
        results: list[dict[str, Any]] = []
        text = code
        for _ in range(max_calls):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"run {run_id} not done; results so far: {results!r}")
            result = await self.execute(
                run_id, mode, text, opts,
                flush_timeout=flush_timeout, api_version=api_version, timeout=remaining,
            )
            results.append(result)
            run_id = result.get("runId") or run_id
            status = result["status"]
            if status in ("finished", "exec-timeout"):
                return results
            if status == "waiting-input":
                if on_waiting_input is None:
                    return results
                answer = on_waiting_input(result)
                if inspect.isawaitable(answer):
                    answer = await answer
                mode, text = "input", str(answer)
            else:  # continued, clean-finished, build-finished
                mode, text = "continue", ""
            if gap > 0:
                await asyncio.sleep(gap)
        raise TimeoutError(f"run {run_id} not done after {max_calls} calls: {results!r}")

    async def wait_ready(
        self,
        service_ports: list[dict[str, Any]] | None = None,
        *,
        attempts: int = 10,
        polling_timeout: float = 60.0,
        init_timeout: float = 60.0,
    ) -> dict[str, Any]:
        """The agent's readiness check at kernel creation (docs/protocol.md#the-agent-side; agent.py create_kernel,
        re-stated here because agent.py cannot be loaded): every 0.3 s, `status` then `get-apps`
        under `init_timeout`, retried on ZMQ errors or a `failed` apps reply, at most `attempts`
        times within `polling_timeout` s. Live apps are merged into `service_ports` like the agent
        does (keeping each port's `protocol`). Returns the apps reply; TimeoutError is not retried."""
        import zmq  # local: only this helper needs it

        started = time.monotonic()
        last: Any = None
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(0.3)
            if time.monotonic() - started > polling_timeout:
                break
            try:
                async with asyncio.timeout(init_timeout):
                    await self.runner.feed_and_get_status()
                    apps = await self.runner.feed_service_apps()
            except zmq.ZMQError as e:
                last = e
                continue
            if apps["status"] == "failed":
                last = apps
                continue
            for live in apps["data"]:
                for port in service_ports or []:
                    if live["name"] == port["name"]:
                        protocol = port.get("protocol")
                        port.update(live)
                        if protocol is not None:
                            port["protocol"] = protocol
                        break
            return _jsonish(apps)
        raise RuntimeError(f"runner not ready after {attempts} attempts: {last!r}")

    # --- the other agent calls (DockerKernel's wrappers) -----------------------------------
    async def complete(
        self, code: str, opts: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """`feed_and_get_completion` -> {"status", "error", "suggestions"} (the REST result)."""
        result = await self._bounded(self.runner.feed_and_get_completion(code, dict(opts or {})), timeout)
        return _jsonish(result.as_dict())

    async def interrupt(self) -> dict[str, Any]:
        """`feed_interrupt`; the agent answers {"status": "finished"} at once."""
        await self.runner.feed_interrupt()
        return {"status": "finished"}

    async def status(self, *, timeout: float | None = None) -> dict[str, Any] | None:
        """`feed_and_get_status` -> the runner's msgpack status map ({"started_at": float})."""
        return await self._bounded(self.runner.feed_and_get_status(), timeout)

    async def ping(self, *, timeout: float | None = None) -> dict[str, Any] | None:
        """The agent's `AbstractKernel.ping` (status, None on error)."""
        return await self._bounded(self.module.AbstractKernel.ping(self._kernel), timeout)

    async def get_apps(self) -> dict[str, Any]:
        """`feed_service_apps` (10 s timeout inside the agent code)."""
        return await self.runner.feed_service_apps()

    async def start_service(self, info: Mapping[str, Any]) -> dict[str, Any]:
        """`feed_start_service` with a full payload (see `service_payload`); 35 s agent timeout."""
        return await self.runner.feed_start_service(dict(info))

    async def shutdown_service(self, name: str) -> None:
        await self.runner.feed_shutdown_service(name)

    async def start_model_service(self, info: Mapping[str, Any]) -> dict[str, Any]:
        return await self.runner.feed_start_model_service(dict(info))

    async def send_event(self, ev_type: str, data: Any = None) -> None:
        """`feed_event` (e.g. "oom")."""
        types_mod = __import__("ai.backend.agent.types", fromlist=["AgentEventData"])
        await self.runner.feed_event(types_mod.AgentEventData(type=ev_type, data=data))

    @staticmethod
    def service_payload(
        name: str,
        container_ports: Sequence[int],
        protocol: str = "http",
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The `start-service` payload exactly as `DockerKernel.start_service` builds it."""
        return {
            "name": name,
            "port": container_ports[0],
            "ports": list(container_ports),
            "protocol": protocol,
            "options": dict(options or {}),
        }


# --- helpers to read results ---------------------------------------------------------------
def console_items(results: dict[str, Any] | Sequence[dict[str, Any]]) -> list[list[Any]]:
    """All API v2+ console items of one result or of a list of results, in order."""
    if isinstance(results, Mapping):
        results = [results]
    items: list[list[Any]] = []
    for r in results:
        items.extend(r.get("console") or [])
    return items


def stdout_of(results: dict[str, Any] | Sequence[dict[str, Any]]) -> str:
    """Concatenated stdout text (console v2+ or v1 `stdout` field) of one or many results."""
    return _stream_of(results, "stdout")


def stderr_of(results: dict[str, Any] | Sequence[dict[str, Any]]) -> str:
    return _stream_of(results, "stderr")


def _stream_of(results: dict[str, Any] | Sequence[dict[str, Any]], stream: str) -> str:
    if isinstance(results, Mapping):
        results = [results]
    parts: list[str] = []
    for r in results:
        if "console" in r:
            parts.extend(data for kind, data in r["console"] or [] if kind == stream)
        else:
            parts.append(r.get(stream) or "")
    return "".join(parts)
