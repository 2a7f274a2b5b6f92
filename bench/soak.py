"""Soak and fault figures at full size (tests/test_load_faults.py runs the same scenarios smaller).

Each scenario gets a fresh runner (free ports, temp dirs) and prints its figures and whether the
property holds:
  1. N agent queries in a row: runner RSS growth after warm-up (<= 5 MB), p99 <= 3x p50, fds;
  2. the kernel SIGKILLed during K consecutive queries, ~1 s after each recovery: every query
     ends with `finished`, the next one works, each recovery < 5 s;
  3. M MB of numbered output to an agent reading at R MB/s: runner RSS peak, order, `finished`;
  4. the agent disconnecting mid-output and reconnecting: it gets the ordered rest;
  5. C gateway websocket clients on the main kernel plus agent queries: no crossed messages.
Usage: python bench/soak.py [--queries 1000] [--kills 100] [--output-mb 1024] [--clients 50] [--only N,..]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import faultlib  # noqa: E402
from tests.runnerlib import RunnerProcess, free_port  # noqa: E402

TOKEN = "soak-token"
RSS_BOUND_MB = faultlib.spill_rss_bound_mb(32)  # the default memory limit


DEBUG = False


async def with_runner(scenario, *, gateway: bool = False):
    root = Path(tempfile.mkdtemp(prefix="krunner-soak-"))
    dirs = {name: root / name for name in ("work", "config", "runtime")}
    for path in dirs.values():
        path.mkdir()
    port = free_port()
    extra = ["--gateway-port", str(port), "--gateway-token", TOKEN] if gateway else []
    runner = RunnerProcess(lang="python", dirs=dirs, extra_args=extra, debug=DEBUG)
    await runner.start()
    try:
        return await scenario(runner, f"http://127.0.0.1:{port}")
    except BaseException:
        print(f"scenario failed; runner log: {runner.log_path}", flush=True)
        raise
    finally:
        await runner.stop()


async def main_kernel_id(url: str) -> str:
    import requests

    for _ in range(300):
        try:
            r = await asyncio.to_thread(requests.get, url + "/api/kernels", headers={"Authorization": f"token {TOKEN}"})
            if r.status_code == 200 and r.json():
                return r.json()[0]["id"]
        except requests.ConnectionError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the main kernel never appeared in the gateway")


def report(name: str, fig: dict, check) -> bool:
    try:
        check(fig)
        verdict = "PASS"
    except AssertionError:
        verdict = "FAIL"
    print(f"{verdict}  {name}: {json.dumps(fig, default=str)}", flush=True)
    return verdict == "PASS"


async def run(args: argparse.Namespace) -> int:
    only = {int(x) for x in args.only.split(",")} if args.only else {1, 2, 3, 4, 5}
    ok = True
    t0 = time.monotonic()
    if 1 in only:
        fig = await with_runner(lambda r, _u: faultlib.queries_in_a_row(r, args.queries, warmup=100))
        ok &= report(f"{args.queries} queries in a row", fig, faultlib.check_queries_in_a_row)
    if 2 in only:
        fig = await with_runner(lambda r, _u: faultlib.kills_during_queries(r, args.kills, kill_after=1.0))
        ok &= report(f"kernel SIGKILLed during {args.kills} queries", fig, faultlib.check_kills)
    if 3 in only:
        fig = await with_runner(lambda r, _u: faultlib.slow_reader(r, args.output_mb * faultlib.MB, args.read_mb_s))
        ok &= report(f"{args.output_mb} MB to a slow reader ({args.read_mb_s} MB/s)", fig,
                     lambda f: faultlib.check_slow_reader(f, RSS_BOUND_MB))
    if 4 in only:
        fig = await with_runner(lambda r, _u: faultlib.reconnect_mid_output(r, lines=100_000))
        ok &= report("agent reconnects mid-output", fig, faultlib.check_reconnect)
    if 5 in only:
        async def clients(runner, url):
            kid = await main_kernel_id(url)
            return await faultlib.gateway_clients_and_agent(runner, url, kid, TOKEN, clients=args.clients,
                                                            rounds=5, agent_queries=50)
        fig = await with_runner(clients, gateway=True)
        ok &= report(f"{args.clients} gateway clients + agent queries", fig, faultlib.check_gateway_clients)
    print(f"total {time.monotonic() - t0:.0f} s: {'all properties hold' if ok else 'SOME PROPERTY FAILED'}")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--output-mb", type=int, default=1024)
    parser.add_argument("--read-mb-s", type=float, default=40.0, help="the slow reader's pace")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--only", default="", help="comma-separated scenario numbers")
    parser.add_argument("--debug", action="store_true", help="runners log at debug level")
    args = parser.parse_args()
    global DEBUG
    DEBUG = args.debug
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
