"""The git runtime: bash queries as before, plus `%show graph [PATH]` giving the original's
commit list (checked against the original runner's own `do_show`) and an SVG for notebooks."""
from __future__ import annotations

import asyncio
import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests import originallib
from tests.agentlib import console_items, stderr_of, stdout_of
from tests.medialib import jupyter_displays, make_repo
from tests.runnerlib import RunnerProcess

pytestmark = pytest.mark.skipif(shutil.which("git") is None or shutil.which("bash") is None,
                                reason="git and bash are needed")
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
async def git_runner(runner_dirs: dict[str, Path]) -> AsyncIterator[RunnerProcess]:
    make_repo(runner_dirs["work"] / "repo")
    proc = RunnerProcess(lang="git", dirs=runner_dirs)
    await proc.start()
    try:
        yield proc
    finally:
        await proc.stop()


def graph_of(results: list[dict[str, Any]]) -> Any:
    media = [item[1] for item in console_items(results) if item[0] == "media"]
    assert len(media) == 1 and media[0][0] == "application/vnd.sorna.gitgraph", console_items(results)
    return media[0][1]


async def test_show_graph_gives_the_original_commit_list(git_runner: RunnerProcess, agent_client_factory: Any) -> None:
    repo = git_runner.dirs["work"] / "repo"
    try:
        expected = originallib.original_git_graph(repo)
    except RuntimeError as e:
        pytest.skip(f"the original wheel is not available: {e}")
    agent = await agent_client_factory(git_runner.replin_port, git_runner.replout_port)
    results = await agent.execute_until_done(None, "query", "%show graph repo")
    assert results[-1]["exitCode"] == 0, stderr_of(results)
    commits = graph_of(results)
    assert commits == expected
    assert [c["message"] for c in commits][0] == "first" and len(commits) == 4
    merge = commits[-1]
    assert merge["message"] == "Merge branch 'feature'" and merge["branch"] == "main"
    assert len(merge["parent_ids"]) == 2 and merge["parent_branches"] == ["main", "feature"]
    assert {c["branch"] for c in commits} == {"main", "feature"}

    # still a terminal-style bash session; `%show graph` alone uses bash's current directory
    results = await agent.execute_until_done(None, "query", "cd repo && git branch --show-current")
    assert stdout_of(results).strip() == "main"
    results = await agent.execute_until_done(None, "query", "%show graph")
    assert graph_of(results) == expected


async def test_git_errors_go_to_stderr_with_nonzero_exit(git_runner: RunnerProcess, agent_client_factory: Any,
                                                         tmp_path: Path) -> None:
    agent = await agent_client_factory(git_runner.replin_port, git_runner.replout_port)
    (tmp_path / "plain").mkdir()
    for query, message in ((f"%show graph {tmp_path / 'plain'}", "not a git repository"),
                           ("%show graph no-such-dir", "no such directory"),
                           ("%show tree", "invalid choice")):
        results = await agent.execute_until_done(None, "query", query)
        assert results[-1]["exitCode"] != 0, query
        assert message in stderr_of(results), (query, console_items(results))
        assert not [i for i in console_items(results) if i[0] == "media"]
    results = await agent.execute_until_done(None, "query", "echo still here")
    assert stdout_of(results).strip() == "still here" and results[-1]["exitCode"] == 0


async def test_jupyter_clients_get_an_svg_of_the_graph(git_runner: RunnerProcess, agent_client_factory: Any) -> None:
    agent = await agent_client_factory(git_runner.replin_port, git_runner.replout_port)
    await agent.execute_until_done(None, "query", "true")  # the kernel is up
    reply, bundles = await asyncio.to_thread(jupyter_displays, git_runner.dirs["runtime"], "%show graph repo")
    assert reply["content"]["status"] == "ok" and len(bundles) == 1
    commits = json.loads(bundles[0]["application/vnd.sorna.gitgraph"])  # JSON text for nbformat's sake
    svg = ET.fromstring(bundles[0]["image/svg+xml"])
    assert sorted(c.get("data-oid") for c in svg.iter(f"{SVG}circle")) == sorted(c["oid"] for c in commits)
    edges = {(e.get("data-from"), e.get("data-to")) for e in svg.iter(f"{SVG}path")}
    assert edges == {(c["oid"], p) for c in commits for p in c["parent_ids"] if p}
    assert len(edges) == 4  # two single-parent commits, a merge with two parents
    assert "Merge branch" in json.dumps(bundles[0]["text/plain"])
