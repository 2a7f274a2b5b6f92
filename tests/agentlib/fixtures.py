"""pytest plugin: `pytest_plugins = ["tests.agentlib.fixtures"]` in tests/conftest.py.

Fixtures:
* `agent_kernel_module` (session): the real `ai.backend.agent.kernel` module (wheel fetched/loaded once).
* `agent_client_factory` (async, function): `agent = await agent_client_factory(in_port, out_port, **kw)`
  returns an opened `AgentClient`; every client is closed at teardown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from types import ModuleType
from typing import Any

import pytest
import pytest_asyncio

from . import AgentClient, load_agent_kernel

AgentClientFactory = Callable[..., Awaitable[AgentClient]]


# async_timeout 4.x (the version the wheel pins) warns on the agent's sync `with timeout(...)`.
AGENT_WARNING_FILTER = r"ignore:with timeout\(\) is deprecated:DeprecationWarning"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("filterwarnings", AGENT_WARNING_FILTER)


@pytest.fixture(scope="session")
def agent_kernel_module() -> ModuleType:
    return load_agent_kernel()


@pytest_asyncio.fixture
async def agent_client_factory(agent_kernel_module: ModuleType) -> AsyncIterator[AgentClientFactory]:
    clients: list[AgentClient] = []

    async def make(repl_in_port: int, repl_out_port: int, **kwargs: Any) -> AgentClient:
        client = AgentClient(repl_in_port, repl_out_port, **kwargs)
        await client.open()
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in reversed(clients):
            await client.close()
