"""The new kernelspecs as Jupyter front-ends see them: one git runner with a gateway serves the
git kernel (`%show graph`), a Python kernel that draws, vendor.h2o and vendor.aws_polly kernels,
all through the Kernel Gateway REST API and websockets."""
from __future__ import annotations

import asyncio
import base64
import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests

from tests.wsclient import ChannelsClient, stdout_of
from tests.docslib import example
from tests.medialib import NO_AWS, fake_dai, make_repo, moto_polly
from tests.runnerlib import RunnerProcess, free_port

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is needed")
pytest.importorskip("moto.server", reason="moto[server] is needed (.ci/install.d/70-media.sh)")
pytest.importorskip("boto3")
TOKEN = "media-gw"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
async def gw(runner_dirs: dict[str, Path], tmp_path: Path) -> AsyncIterator[RunnerProcess]:
    make_repo(runner_dirs["work"] / "repo")
    port = free_port()
    with moto_polly() as polly_endpoint:
        env = {**NO_AWS, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_POLLY": polly_endpoint,
               "KRUNNER_H2O_DAI_HOME": str(fake_dai(tmp_path)), "TMPDIR": str(tmp_path)}
        proc = RunnerProcess(lang="git", dirs=runner_dirs, env=env,
                             extra_args=["--gateway-port", str(port), "--gateway-token", TOKEN])
        await proc.start()
        proc.gateway_url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        try:
            yield proc
        finally:
            await proc.stop()


def _call(method: str, url: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, url, headers={"Authorization": f"token {TOKEN}"}, timeout=60, **kwargs)


async def _kernel(url: str, name: str | None) -> str:
    """A new kernel of spec `name`, or the runner's main kernel when `name` is None."""
    if name is not None:
        r = await asyncio.to_thread(_call, "POST", url + "/api/kernels", json={"name": name})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])
    for _ in range(150):
        status = (await asyncio.to_thread(_call, "GET", url + "/api/status")).json()
        if status.get("main_kernel_id"):
            return str(status["main_kernel_id"])
        await asyncio.sleep(0.2)
    raise AssertionError("the main kernel never appeared")


async def _run(url: str, kernel_id: str, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ws = await asyncio.to_thread(ChannelsClient, url, kernel_id, TOKEN, "v1")
    try:
        return await asyncio.to_thread(ws.execute, code, 90)
    finally:
        ws.close()


def _displays(iopub: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bundles of `iopub`, each checked the way nbclient stores it into a notebook."""
    shown = [m for m in iopub if m["msg_type"] in ("display_data", "execute_result")]
    for msg in shown:
        nbformat.v4.output_from_msg(msg)  # raises on a value nbformat does not accept
    return [m["content"]["data"] for m in shown]


async def test_front_ends_use_every_new_runtime(gw: RunnerProcess) -> None:
    url = gw.gateway_url  # type: ignore[attr-defined]
    specs = (await asyncio.to_thread(_call, "GET", url + "/api/kernelspecs")).json()["kernelspecs"]
    assert {"git", "python", "vendor.aws_polly", "vendor.h2o"} <= set(specs)

    # the git runtime's main kernel: %show graph as SVG + the commit list
    reply, iopub = await _run(url, await _kernel(url, None), "%show graph repo")
    assert reply["content"]["status"] == "ok"
    (bundle,) = _displays(iopub)
    assert len(json.loads(bundle["application/vnd.sorna.gitgraph"])) == 4
    assert len(list(ET.fromstring(bundle["image/svg+xml"]).iter(f"{SVG}circle"))) == 4

    # a Python kernel (the runner's interpreter) draws: the SVG has the documentation's shapes
    reply, iopub = await _run(url, await _kernel(url, "python"), example("runtimes.md", "drawing"))
    assert reply["content"]["status"] == "ok", reply["content"]
    (bundle,) = _displays(iopub)
    svg = ET.fromstring(bundle["image/svg+xml"])
    assert len(svg.findall(f"{SVG}circle")) == 1 and len(svg.findall(f"{SVG}line")) == 5
    assert bundle["application/x-sorna-drawing"]

    # vendor.h2o with a DAI install: state kept, results as execute_result
    h2o = await _kernel(url, "vendor.h2o")
    reply, _ = await _run(url, h2o, "answer = 6 * 7")
    assert reply["content"]["status"] == "ok", reply["content"]
    reply, iopub = await _run(url, h2o, "answer")
    assert _displays(iopub) == [{"text/plain": "42"}]

    # vendor.aws_polly: the audio, and a player for notebooks
    reply, iopub = await _run(url, await _kernel(url, "vendor.aws_polly"),
                              json.dumps({"text": "Hi", "voiceId": "Joanna"}))
    assert reply["content"]["status"] == "ok", reply["content"]
    (bundle,) = _displays(iopub)
    assert base64.b64decode(bundle["audio/ogg"]) == b"\0" * 8
    assert bundle["text/html"].startswith('<audio controls src="data:audio/ogg;base64,')
    assert stdout_of(iopub) == ""
