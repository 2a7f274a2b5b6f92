#!/usr/bin/env python3
"""Gateway benchmark: websocket execute round trip vs direct ZMQ on the same kernel, and
POST-to-first-kernel_info_reply start time vs `jupyter_client.start_new_kernel`.

    python bench/gateway.py [--n 200] [--starts 10] [--kg]

Round trip = send execute_request("print(1)") and wait for both execute_reply and status idle.
Measurements are interleaved in blocks so machine load hits both sides alike. With --kg (or when
jupyter-kernel-gateway is importable) the same figures are taken for stock Kernel Gateway.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import requests
from jupyter_client import BlockingKernelClient
from jupyter_client.manager import start_new_kernel

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.wsclient import ChannelsClient  # noqa: E402
from tests.gatewaylib import GatewayProcess, isolated_env  # noqa: E402

TOKEN = "bench"
CODE = "print(1)"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] * 1e3


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50_ms": round(pct(values, 0.5), 2), "p95_ms": round(pct(values, 0.95), 2),
            "max_ms": round(max(values) * 1e3, 2), "mean_ms": round(statistics.mean(values) * 1e3, 2)}


def ws_round_trips(client: ChannelsClient, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        client.execute(CODE)
        out.append(time.perf_counter() - t)
    return out


def zmq_round_trips(kc: BlockingKernelClient, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        kc.execute_interactive(CODE, output_hook=lambda m: None, timeout=30)
        out.append(time.perf_counter() - t)
    return out


def gateway_start(url: str, headers: dict, token: str, proto: str) -> tuple[float, str]:
    """POST /api/kernels → websocket → first kernel_info_reply."""
    t = time.perf_counter()
    kid = requests.post(url + "/api/kernels", headers=headers, json={"name": "python3"}, timeout=60).json()["id"]
    c = ChannelsClient(url, kid, token, proto)
    c.request("shell", "kernel_info_request", timeout=60)
    elapsed = time.perf_counter() - t
    c.close()
    requests.delete(f"{url}/api/kernels/{kid}", headers=headers, timeout=60)
    return elapsed, kid


def direct_start() -> float:
    t = time.perf_counter()
    km, kc = start_new_kernel(kernel_name="python3", stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return elapsed


def measure_target(name: str, url: str, headers: dict, token: str, runtime_dir: str | None,
                   n: int, starts: int, blocks: int = 5) -> dict:
    """Round trips (v1 and json websockets vs direct ZMQ on the same kernel) and start times."""
    kid = requests.post(url + "/api/kernels", headers=headers, json={"name": "python3"}, timeout=60).json()["id"]
    result: dict = {"target": name}
    try:
        clients = {p: ChannelsClient(url, kid, token, p) for p in ("v1", "json")}
        kc = None
        if runtime_dir:
            kc = BlockingKernelClient(connection_file=os.path.join(runtime_dir, f"kernel-{kid}.json"))
            kc.load_connection_file()
            kc.start_channels(hb=False)
            kc.execute_interactive("pass", timeout=60)  # answers once the channels are connected
        for c in clients.values():
            ws_round_trips(c, 10)  # warm-up
        if kc:
            zmq_round_trips(kc, 10)
        series: dict[str, list[float]] = {"ws_v1": [], "ws_json": [], "zmq": []}
        per = max(n // blocks, 1)
        for _ in range(blocks):
            series["ws_v1"] += ws_round_trips(clients["v1"], per)
            if kc:
                series["zmq"] += zmq_round_trips(kc, per)
            series["ws_json"] += ws_round_trips(clients["json"], per)
        for c in clients.values():
            c.close()
        if kc:
            kc.stop_channels()
        result["round_trip"] = {k: summary(v) for k, v in series.items() if v}
        if series["zmq"]:
            z = pct(series["zmq"], 0.5)
            result["round_trip"]["ratio_p50_v1_vs_zmq"] = round(pct(series["ws_v1"], 0.5) / z, 2)
            result["round_trip"]["ratio_p50_json_vs_zmq"] = round(pct(series["ws_json"], 0.5) / z, 2)
    finally:
        requests.delete(f"{url}/api/kernels/{kid}", headers=headers, timeout=60)
    gw_starts, direct = [], []
    for _ in range(starts):
        gw_starts.append(gateway_start(url, headers, token, "v1")[0])
        direct.append(direct_start())
    result["start"] = {"gateway": summary(gw_starts), "start_new_kernel": summary(direct),
                       "ratio_p50": round(pct(gw_starts, 0.5) / pct(direct, 0.5), 2)}
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_kg(env: dict, args) -> dict | None:
    """The same figures for stock jupyter-kernel-gateway, when it can be run."""
    if args.kg_path:
        kg = shutil.which("jupyter-kernelgateway", path=args.kg_path)
        if kg is None:
            sys.exit(f"no jupyter-kernelgateway in {args.kg_path}")
        argv = [kg]
    else:
        try:
            import kernel_gateway  # noqa: F401
        except ImportError:
            return None
        argv = [sys.executable, "-m", "kernel_gateway"]
    port = free_port()
    kg_env = dict(env, KG_AUTH_TOKEN=TOKEN, KG_LIST_KERNELS="True", KG_ENV_PROCESS_WHITELIST="TMPDIR,HOME")
    proc = subprocess.Popen([*argv, "--ip=127.0.0.1", f"--port={port}", "--port_retries=0"], env=kg_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                requests.get(url + "/api", headers={"Authorization": f"token {TOKEN}"}, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        return measure_target("jupyter-kernel-gateway", url, {"Authorization": f"token {TOKEN}"}, TOKEN,
                              env["JUPYTER_RUNTIME_DIR"], args.n, args.starts)
    finally:
        proc.terminate()
        proc.wait(20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="round trips per series")
    ap.add_argument("--starts", type=int, default=10, help="kernel starts per side")
    ap.add_argument("--kg-path", default="", help="PATH holding jupyter-kernelgateway (e.g. a venv's bin)")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="gw-bench-")
    env = isolated_env(root)
    os.environ.update({k: env[k] for k in ("JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR")})
    results = []
    with GatewayProcess(env=env, token=TOKEN) as gw:
        results.append(measure_target("krunner gateway", gw.url, gw.headers, TOKEN, env["JUPYTER_RUNTIME_DIR"],
                                      args.n, args.starts))
    kg = run_kg(env, args)
    if kg:
        results.append(kg)
    shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        rt, st = r["round_trip"], r["start"]
        print(f"== {r['target']}")
        for key in ("zmq", "ws_v1", "ws_json"):
            if key in rt:
                s = rt[key]
                print(f"  round trip {key:8s} n={s['n']:4d} p50={s['p50_ms']:7.2f} ms  p95={s['p95_ms']:7.2f} ms")
        if "ratio_p50_v1_vs_zmq" in rt:
            print(f"  ratio p50 ws/zmq: v1 {rt['ratio_p50_v1_vs_zmq']}x  json {rt['ratio_p50_json_vs_zmq']}x  (target <= 1.3x)")
        g, d = st["gateway"], st["start_new_kernel"]
        print(f"  start POST->kernel_info_reply n={g['n']} p50={g['p50_ms']:.0f} ms max={g['max_ms']:.0f} ms; "
              f"start_new_kernel p50={d['p50_ms']:.0f} ms max={d['max_ms']:.0f} ms; ratio {st['ratio_p50']}x (target <= 1.1x)")


if __name__ == "__main__":
    main()
