"""Talk to a runner from outside its chroot, as the agent does: `status`, then one query.

usage: runner_probe.py REPLIN_PORT REPLOUT_PORT [--no-query] [--timeout S]
The runner PULLs on replin and PUSHes on replout. Exits 0 if `status` answers with a msgpack map
holding "started_at" and (unless --no-query) `print(1)` yields stdout "1\n" and finished with
exitCode 0. Runs on the host's Python (needs pyzmq and msgpack).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import msgpack
import zmq


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("replin", type=int)
    ap.add_argument("replout", type=int)
    ap.add_argument("--no-query", action="store_true")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args(argv)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    pull = ctx.socket(zmq.PULL)
    push.linger = pull.linger = 0
    push.connect(f"tcp://127.0.0.1:{args.replin}")
    pull.connect(f"tcp://127.0.0.1:{args.replout}")
    deadline = time.monotonic() + args.timeout

    def recv() -> list[bytes] | None:
        left = deadline - time.monotonic()
        if left <= 0 or not pull.poll(int(left * 1000)):
            return None
        return pull.recv_multipart()

    try:
        t0 = time.monotonic()
        # the runner may still be starting: PUSH queues the request until it connects
        push.send_multipart([b"status", b""])
        while True:
            frames = recv()
            if frames is None:
                print(f"FAIL runner: no status reply within {args.timeout:.0f} s")
                return 1
            if frames[0] == b"status":
                break
        status = msgpack.unpackb(frames[1])
        if not isinstance(status, dict) or "started_at" not in status:
            print(f"FAIL runner: bad status payload {status!r}")
            return 1
        print(f"ok   runner status after {time.monotonic() - t0:.1f} s: {status}")
        if args.no_query:
            return 0
        t1 = time.monotonic()
        push.send_multipart([b"code", b"print(1)"])
        stdout = b""
        while True:
            frames = recv()
            if frames is None:
                print(f"FAIL runner: query not finished within {args.timeout:.0f} s (stdout so far {stdout!r})")
                return 1
            kind = frames[0]
            if kind == b"stdout":
                stdout += frames[1]
            elif kind == b"finished":
                result = json.loads(frames[1] or b"{}")
                break
        if stdout != b"1\n" or result.get("exitCode") != 0:
            print(f"FAIL runner: query gave stdout {stdout!r}, finished {result}")
            return 1
        print(f"ok   runner query print(1) -> {stdout!r}, finished {result} in {time.monotonic() - t1:.1f} s")
        return 0
    finally:
        ctx.destroy(linger=0)


if __name__ == "__main__":
    sys.exit(main())
