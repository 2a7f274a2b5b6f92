"""vendor.aws_polly against a real HTTP Polly endpoint: moto in server mode on a free port."""
from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ai.backend.kernel.languages.vendor.aws_polly.kernel import RequestError, parse_request
from tests.agentlib import console_items, stderr_of
from tests.docslib import example
from tests.medialib import NO_AWS, moto_polly
from tests.runnerlib import RunnerProcess

pytest.importorskip("moto.server", reason="moto[server] is needed (.ci/install.d/70-media.sh)")
pytest.importorskip("boto3")


@pytest.fixture(scope="module")
def polly_endpoint() -> Iterator[str]:
    with moto_polly() as url:
        yield url


async def start_runner(dirs: dict[str, Path], env: dict[str, str]) -> RunnerProcess:
    proc = RunnerProcess(lang="vendor.aws_polly", dirs=dirs, env={**NO_AWS, **env})
    await proc.start()
    return proc


@pytest.fixture
async def polly_runner(runner_dirs: dict[str, Path], polly_endpoint: str) -> AsyncIterator[RunnerProcess]:
    proc = await start_runner(runner_dirs, {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_POLLY": polly_endpoint})
    try:
        yield proc
    finally:
        await proc.stop()


def test_request_parsing_keeps_the_original_fields() -> None:
    assert parse_request('{"text": "Hi", "voiceId": "Joanna"}') == {
        "Text": "Hi", "VoiceId": "Joanna", "TextType": "text", "OutputFormat": "ogg_vorbis"}
    ssml = parse_request('{"text": "<speak>Hi</speak>", "voiceId": "Seoyeon", "textType": "ssml"}')
    assert ssml["TextType"] == "ssml"
    for bad in ("Hello", "[1]", '{"voiceId": "Joanna"}', '{"text": "x"}'):
        with pytest.raises(RequestError):
            parse_request(bad)


async def test_speech_comes_back_as_audio_media(polly_runner: RunnerProcess, agent_client_factory: Any) -> None:
    agent = await agent_client_factory(polly_runner.replin_port, polly_runner.replout_port)
    query = example("runtimes.md", "polly")
    results = await agent.execute_until_done(None, "query", query)
    assert results[-1]["status"] == "finished" and results[-1]["exitCode"] == 0, stderr_of(results)
    media = [item[1] for item in console_items(results) if item[0] == "media"]
    assert len(media) == 1, console_items(results)
    content_type, data = media[0]
    assert content_type == "audio/ogg"  # what the endpoint answered for ogg_vorbis
    prefix = "data:audio/ogg;base64,"
    assert data.startswith(prefix) and base64.b64decode(data[len(prefix):]) == b"\0" * 8  # moto's audio

    # a request Polly rejects: its error on stderr, exit code != 0, the next query still works
    results = await agent.execute_until_done(None, "query", json.dumps({"text": "x", "voiceId": "Nobody"}))
    assert results[-1]["exitCode"] != 0
    assert "InvalidParameterValue" in stderr_of(results)
    results = await agent.execute_until_done(None, "query", "not json")
    assert results[-1]["exitCode"] != 0 and "not JSON" in stderr_of(results)
    results = await agent.execute_until_done(None, "query", query)
    assert results[-1]["exitCode"] == 0


async def test_without_credentials_a_clear_error(runner_dirs: dict[str, Path], polly_endpoint: str,
                                                 agent_client_factory: Any) -> None:
    proc = await start_runner(runner_dirs, {"AWS_DEFAULT_REGION": "us-east-1",
                                            "AWS_ENDPOINT_URL_POLLY": polly_endpoint})
    try:
        agent = await agent_client_factory(proc.replin_port, proc.replout_port)
        results = await agent.execute_until_done(None, "query", json.dumps({"text": "Hi", "voiceId": "Joanna"}))
        assert results[-1]["exitCode"] != 0
        assert "Unable to locate credentials" in stderr_of(results)
        assert not [i for i in console_items(results) if i[0] == "media"]
    finally:
        await proc.stop()


def test_batch_mode_says_there_is_none(tmp_path: Path) -> None:
    from ai.backend.kernel.languages import BatchContext, get_language

    language = get_language("vendor.aws_polly")
    ctx = BatchContext("vendor.aws_polly", tmp_path, language.default_runtime, {})
    for heuristic in (language.build, language.exec):
        plan = heuristic(ctx)
        assert plan.steps == () and plan.exit_code == 127 and "no batch mode" in plan.message
