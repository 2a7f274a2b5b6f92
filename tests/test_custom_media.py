"""Custom media to the agent: a vendor type in a display bundle reaches the agent's client as
media, ahead of generic types and text/plain; audio as a data URI."""
from __future__ import annotations

from typing import Any

from tests.agentlib import console_items, stderr_of
from tests.docslib import example
from tests.runnerlib import RunnerProcess

CODE = """
from IPython.display import display
display({"text/plain": "fallback", "text/html": "<b>x</b>", "application/x-acme-chart": "AAEC"}, raw=True)
display({"text/plain": "fallback", "application/vnd.acme.graph+json": [{"id": 1, "to": [2]}]}, raw=True)
display({"text/plain": "a widget", "application/vnd.jupyter.widget-view+json": {"model_id": "m"}}, raw=True)
display({"text/html": "<audio/>", "audio/ogg": "T2dnUw=="}, raw=True)
display({"text/plain": "plain", "text/html": "<i>html</i>"}, raw=True)
"""


async def test_vendor_types_and_audio_reach_the_agent(runner: RunnerProcess, agent_client_factory: Any) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    results = await agent.execute_until_done(None, "query", CODE)
    assert results[-1]["exitCode"] == 0, stderr_of(results)
    assert console_items(results) == [
        ["media", ["application/x-acme-chart", "AAEC"]],
        ["media", ["application/vnd.acme.graph+json", [{"id": 1, "to": [2]}]]],
        ["stdout", "a widget"],  # Jupyter's own front-end types are not for the agent
        ["media", ["audio/ogg", "data:audio/ogg;base64,T2dnUw=="]],
        ["media", ["text/html", "<i>html</i>"]],
    ]


async def test_the_documented_example(runner: RunnerProcess, agent_client_factory: Any) -> None:
    agent = await agent_client_factory(runner.replin_port, runner.replout_port)
    results = await agent.execute_until_done(None, "query", example("runtimes.md", "custom-media"))
    assert console_items(results) == [["media", ["application/vnd.acme.chart+json", {"series": [1, 3, 2]}]]]
