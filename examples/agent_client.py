#!/usr/bin/env python3
"""A small agent-like client: try every op of the kernel-runner protocol against a running runner.

    python -m ai.backend.kernel --work-dir /tmp/w --config-dir /tmp/c python &   # a runner
    python examples/agent_client.py status
    python examples/agent_client.py query "print('hello'); input('name? ')"    # answers input from your terminal
    python examples/agent_client.py batch --build '*' --exec '*'               # in the runner's work dir
    python examples/agent_client.py complete "pri"
    python examples/agent_client.py interrupt
    python examples/agent_client.py get-apps
    python examples/agent_client.py start-service jupyter --port 8080
    python examples/agent_client.py shutdown-service jupyter
    python examples/agent_client.py event oom

Every message is two ZeroMQ frames: [op, payload] to the runner's PULL port (2000), and
[type, payload] back from its PUSH port (2001). The protocol is described in docs/protocol.md.
"""
from __future__ import annotations

import argparse
import json
import sys

import msgpack
import zmq

FINISH = {b"finished"}
BATCH_FINISH = {b"clean-finished", b"build-finished", b"finished"}


class Client:
    def __init__(self, host: str, in_port: int, out_port: int, timeout: float) -> None:
        ctx = zmq.Context.instance()
        self.push = ctx.socket(zmq.PUSH)
        self.pull = ctx.socket(zmq.PULL)
        self.push.linger = self.pull.linger = 50
        self.push.connect(f"tcp://{host}:{in_port}")
        self.pull.connect(f"tcp://{host}:{out_port}")
        self.pull.rcvtimeo = int(timeout * 1000)

    def send(self, op: str, payload: str | bytes = b"") -> None:
        self.push.send_multipart([op.encode(), payload.encode() if isinstance(payload, str) else payload])

    def recv(self) -> tuple[bytes, bytes]:
        op, payload = self.pull.recv_multipart()
        return op, payload

    def reply(self, expected: bytes) -> bytes:
        while True:
            op, payload = self.recv()
            if op == expected:
                return payload

    def stream(self, last: bytes) -> int:
        """Print output frames until the `last` finish frame; answer input prompts from the terminal."""
        while True:
            op, payload = self.recv()
            if op == b"stdout":
                sys.stdout.write(payload.decode(errors="replace"))
                sys.stdout.flush()
            elif op == b"stderr":
                sys.stderr.write(payload.decode(errors="replace"))
            elif op == b"media":
                media = json.loads(payload)
                print(f"[media {media['type']}: {len(media['data'])} chars]")
            elif op == b"waiting-input":
                options = json.loads(payload) if payload else {}
                prompt = "(password) " if options.get("is_password") else ""
                self.send("input", input(prompt))
            elif op in BATCH_FINISH:
                code = json.loads(payload)["exitCode"]
                print(f"[{op.decode()}: exit code {code}]", file=sys.stderr)
                if op == last or op == b"finished":
                    return code
            else:
                print(f"[{op.decode()}] {payload.decode(errors='replace')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--in-port", type=int, default=2000, help="the runner's replin (PULL) port")
    parser.add_argument("--out-port", type=int, default=2001, help="the runner's replout (PUSH) port")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each frame")
    sub = parser.add_subparsers(dest="op", required=True)
    sub.add_parser("status")
    sub.add_parser("query").add_argument("code")
    batch = sub.add_parser("batch")
    for step in ("clean", "build", "exec"):
        batch.add_argument(f"--{step}", default="", help='"" skips, "*" uses the language heuristic')
    complete = sub.add_parser("complete")
    complete.add_argument("code", help="text before the cursor")
    complete.add_argument("--post", default="", help="text after the cursor")
    sub.add_parser("interrupt")
    sub.add_parser("get-apps").add_argument("name", nargs="?", default="")
    start = sub.add_parser("start-service")
    start.add_argument("name")
    start.add_argument("--port", type=int, required=True)
    start.add_argument("--protocol", default="http")
    sub.add_parser("shutdown-service").add_argument("name")
    event = sub.add_parser("event")
    event.add_argument("type")
    event.add_argument("--data", default="null", help="JSON")
    args = parser.parse_args()

    client = Client(args.host, args.in_port, args.out_port, args.timeout)
    try:
        if args.op == "status":
            client.send("status")
            print(msgpack.unpackb(client.reply(b"status")))
        elif args.op == "query":
            client.send("code", args.code)
            return client.stream(b"finished")
        elif args.op == "batch":
            for step in ("clean", "build", "exec"):
                client.send(step, getattr(args, step))
            return client.stream(b"finished")
        elif args.op == "complete":
            client.send("complete", json.dumps({"code": args.code, "post": args.post}))
            print(json.loads(client.reply(b"completion"))["suggestions"])
        elif args.op == "interrupt":
            client.send("interrupt")
        elif args.op == "get-apps":
            client.send("get-apps", args.name)
            print(json.dumps(json.loads(client.reply(b"apps-result")), indent=2))
        elif args.op == "start-service":
            info = {"name": args.name, "port": args.port, "ports": [args.port], "protocol": args.protocol, "options": {}}
            client.send("start-service", json.dumps(info))
            print(json.loads(client.reply(b"service-result")))
        elif args.op == "shutdown-service":
            client.send("shutdown-service", json.dumps(args.name))
        elif args.op == "event":
            client.send("event", json.dumps({"type": args.type, "data": json.loads(args.data)}))
    except zmq.Again:
        print("no answer from the runner (is it running on these ports?)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
