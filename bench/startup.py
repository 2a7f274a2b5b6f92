"""Cold paths of the runner: launch → `status` answered, launch → first query `finished` (python).

    python3 bench/startup.py [-n 7] [--runtime PATH] [--compare DIR]

Each round launches a fresh runner (free ports, fresh work/config/runtime dirs, HOME isolated) the
way the agent does (`python -m ai.backend.kernel python [RUNTIME_PATH]`, ports and dirs by
environment variable), connects like the agent, and times from the spawn:

- `status`: the agent's readiness probe is repeated every 5 ms until a reply comes;
- `first query`: one `code` op (`print(1)`) sent at once, timed to its `finished` frame.

References are measured in the same rounds, interleaved: `python3 -c pass` (the interpreter
alone), `python3 -c "import zmq"`, and a fresh interpreter starting ipykernel through
jupyter_client and running `print(1)` (the floor for the first query). `--compare DIR` also launches the runner found in DIR (a
`git archive` of another commit) in the same rounds, for before/after figures. Prints min/median/max and the load average
(bench/README.md, "Cold paths").
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq
import zmq.asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.runnerlib import REPO, free_port  # noqa: E402


# The floor for the first query: a fresh interpreter that starts ipykernel through jupyter_client
# and runs print(1) as soon as the kernel answers (no agent sockets, no runner).
RAW_FIRST_QUERY = """
import asyncio
from jupyter_client.manager import start_new_async_kernel
async def main():
    km, kc = await start_new_async_kernel(kernel_name="python3")
    reply = await kc.execute_interactive("print(1)", output_hook=lambda msg: None, timeout=60)
    assert reply["content"]["status"] == "ok"
    kc.stop_channels()
    await km.shutdown_kernel(now=True)
asyncio.run(main())
"""


def reference(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


async def one_launch(runtime: str | None, query: bool, repo: Path = REPO) -> dict[str, float]:
    """Launch one runner; the seconds from its spawn to `status` (and to the first `finished`)."""
    with tempfile.TemporaryDirectory(prefix="krunner-startup-") as tmp:
        root = Path(tmp)
        dirs = {name: root / name for name in ("work", "config", "runtime", "home")}
        for path in dirs.values():
            path.mkdir()
        replin, replout = free_port(), free_port()
        env = dict(os.environ, HOME=str(dirs["home"]), JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
                   KRUNNER_REPLIN_PORT=str(replin), KRUNNER_REPLOUT_PORT=str(replout),
                   KRUNNER_BIND_IP="127.0.0.1", KRUNNER_WORK_DIR=str(dirs["work"]),
                   KRUNNER_CONFIG_DIR=str(dirs["config"]),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])))
        ctx = zmq.asyncio.Context()
        push, pull = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
        push.linger = pull.linger = 0
        push.sndhwm = 0  # keep the repeated probes until the runner binds
        push.connect(f"tcp://127.0.0.1:{replin}")
        pull.connect(f"tcp://127.0.0.1:{replout}")
        argv = [sys.executable, "-m", "ai.backend.kernel", "python", *([runtime] if runtime else [])]
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(*argv, cwd=str(dirs["work"]), env=env,
                                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL)
        figures: dict[str, float] = {}
        try:
            if query:
                await push.send_multipart([b"code", b"print(1)"])

            async def probe() -> None:
                while "status" not in figures:
                    await push.send_multipart([b"status", b""])
                    await asyncio.sleep(0.005)

            prober = asyncio.create_task(probe())
            deadline = started + 60
            while ("status" not in figures or (query and "first_query" not in figures)) and time.perf_counter() < deadline:
                if not await pull.poll(int((deadline - time.perf_counter()) * 1000)):
                    break
                name, data = await pull.recv_multipart()
                now = time.perf_counter() - started
                if name == b"status":
                    figures.setdefault("status", now)
                elif name == b"finished":
                    figures["first_query"] = now
                    assert json.loads(data).get("exitCode") == 0, data
            prober.cancel()
        finally:
            proc.terminate()
            await proc.wait()
            ctx.destroy(linger=0)
        return figures


def summary(values: list[float]) -> str:
    return f"{min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=7, help="launches per figure")
    parser.add_argument("--runtime", help="RUNTIME_PATH given to the runner (default: none, its own)")
    parser.add_argument("--compare", type=Path, help="another checkout of the runner, launched in the same rounds")
    args = parser.parse_args()
    rows: dict[str, list[float]] = {"python3 -c pass": [], 'python3 -c "import zmq"': [],
                                    "raw jupyter_client: kernel start + print(1)": []}
    repos = {"": REPO, **({"compare: ": args.compare.resolve()} if args.compare else {})}
    load = os.getloadavg()
    for _ in range(args.n):
        rows["python3 -c pass"].append(reference("pass"))
        rows['python3 -c "import zmq"'].append(reference("import zmq"))
        rows["raw jupyter_client: kernel start + print(1)"].append(reference(RAW_FIRST_QUERY))
        for label, repo in repos.items():
            status = (await one_launch(args.runtime, query=False, repo=repo))["status"]
            rows.setdefault(f"{label}runner: status", []).append(status)
            both = await one_launch(args.runtime, query=True, repo=repo)
            rows.setdefault(f"{label}runner: first query finished", []).append(both["first_query"])
            rows.setdefault(f"{label}runner (query sent too): status", []).append(both["status"])
    print(f"{args.n} launches each, load average {load[0]:.2f} → {os.getloadavg()[0]:.2f}; "
          "seconds from spawn, min / median / max")
    for name, values in rows.items():
        print(f"  {name:45} {summary(values)}")


if __name__ == "__main__":
    asyncio.run(main())
