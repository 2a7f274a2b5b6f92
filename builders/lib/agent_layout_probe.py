"""The agent side of builders/test.sh's agent-layout stage: Backend.AI's own code-runner client
(tests/agentlib drives `AbstractCodeRunner` from the backend.ai-agent wheel) talks to a runner
started exactly as the agent starts it, and checks that the runner answering is krunner-bridge.

usage: agent_layout_probe.py REPLIN REPLOUT (--expect bridge|agent) [--timeout S]
Run with PYTHONPATH=<repository> on the host's Python (pyzmq, msgpack, async_timeout,
typing_extensions: the test dependencies). Prints one line per check; exits 1 on a failure.

--expect bridge: a query, a markdown display (a `media` console item: only krunner-bridge sends
one), a completion (real suggestions), an interrupt of a busy loop, a batch `exec`, and the uid.
--expect agent (KRUNNER_RUNNER=agent): the agent-mounted runner answers `status` and a query.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time

from tests.agentlib import AgentClient, console_items, stderr_of, stdout_of

MARKDOWN = "from IPython.display import Markdown, display\ndisplay(Markdown('**krunner-bridge**'))\n"


def ok(msg: str) -> None:
    print(f"ok   {msg}", flush=True)


class Failed(Exception):
    pass


def check(cond: bool, what: str) -> None:
    if not cond:
        raise Failed(what)


async def probe_bridge(agent: AgentClient) -> None:
    res = await agent.execute_until_done(None, "query", "import os, sys\nprint(os.getuid(), sys.prefix, sys.version_info[:2])")
    out = stdout_of(res)
    check(res[-1]["status"] == "finished" and res[-1]["exitCode"] == 0, f"query failed: {res}")
    uid = int(out.split()[0])
    check(uid != 0, f"the runner's kernel runs as root: {out!r}")
    ok(f"query as uid {uid}: {out.strip()!r}")

    res = await agent.execute_until_done(None, "query", MARKDOWN)
    media = [item[1] for item in console_items(res) if item[0] == "media"]
    check(media == [["text/markdown", "**krunner-bridge**"]], f"markdown is not a media item: {res}")
    ok("markdown display -> console ['media', ['text/markdown', ...]] (the original runner cannot)")

    await agent.execute_until_done(None, "query", "krunner_layout_variable = 1")
    # the first completion loads the completer (jedi): on a loaded machine it can exceed the
    # runner's 5 s completion timeout and answer []; a client asks again
    for attempt in range(3):
        comp = await agent.complete("krunner_layout_v", {"row": 0, "col": 16, "line": "krunner_layout_v", "post": ""})
        if comp["suggestions"]:
            break
        print(f"note completion attempt {attempt + 1} answered {comp} (cold completer?); asking again", flush=True)
    check("krunner_layout_variable" in comp["suggestions"], f"completion: {comp}")
    comp2 = await agent.complete("pri")
    check("print" in comp2["suggestions"], f"completion: {comp2}")
    ok(f"completion: {comp['suggestions'][:3]} / 'pri' -> print")

    first = await agent.execute(None, "query", "print('go', flush=True)\nwhile True: pass", flush_timeout=0.5)
    deadline = time.monotonic() + 60
    while "go" not in stdout_of(first) and time.monotonic() < deadline:
        first = await agent.execute(first["runId"], "continue", flush_timeout=0.5)
    t0 = time.monotonic()
    await agent.interrupt()
    res = await asyncio.wait_for(agent.execute_until_done(first["runId"], "continue", flush_timeout=0.3), 30)
    check(res[-1]["status"] == "finished" and "KeyboardInterrupt" in stderr_of(res), f"interrupt: {res}")
    ok(f"interrupt of a busy loop: KeyboardInterrupt, finished in {time.monotonic() - t0:.1f} s")

    res = await agent.execute_until_done(
        None, "batch", opts={"clean": "", "build": "", "exec": "*"}, gap=0.05, timeout=120)
    check(res[-1]["status"] == "finished" and res[-1]["exitCode"] == 0, f"batch: {res}")
    check("batch says 42" in stdout_of(res), f"batch stdout: {stdout_of(res)!r}")
    ok(f"batch exec '*' (main.py in /home/work): {stdout_of(res).strip()!r}, exit 0")


async def probe_agent_runner(agent: AgentClient) -> None:
    res = await agent.execute_until_done(None, "query", "print(6 * 7)")
    check(res[-1]["status"] == "finished" and stdout_of(res) == "42\n", f"query: {res}")
    ok("the agent-mounted runner answers a query: 42")


async def main_async(args: argparse.Namespace) -> int:
    async with AgentClient(args.replin, args.replout, call_timeout=args.timeout) as agent:
        t0 = time.monotonic()
        status = None
        while status is None and time.monotonic() - t0 < args.timeout:
            try:
                status = await asyncio.wait_for(agent.status(), 5)
            except (asyncio.TimeoutError, TimeoutError):
                status = None
        if status is None:
            print(f"FAIL no status within {args.timeout:.0f} s")
            return 1
        ok(f"status after {time.monotonic() - t0:.1f} s")
        try:
            await (probe_bridge(agent) if args.expect == "bridge" else probe_agent_runner(agent))
        except (Failed, TimeoutError, asyncio.TimeoutError) as e:
            print(f"FAIL {type(e).__name__}: {e}")
            return 1
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("replin", type=int)
    ap.add_argument("replout", type=int)
    ap.add_argument("--expect", choices=("bridge", "agent"), required=True)
    ap.add_argument("--timeout", type=float, default=120.0)
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
