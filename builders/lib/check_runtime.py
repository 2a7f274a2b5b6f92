"""Run by the runtime's own interpreter inside a test root filesystem (python3 -I check_runtime.py).

Imports the stdlib C modules and the runner's dependencies and does a ZeroMQ round trip over
TCP on 127.0.0.1. Prints one line per check and a final OK line; exits 1 on the first failure.
"""
import importlib
import importlib.util
import platform
import sys

STDLIB = ["ssl", "zlib", "sqlite3", "bz2", "lzma", "ctypes", "hashlib", "uuid", "decimal",
          "json", "asyncio", "select", "socket", "pyexpat", "_ssl", "_hashlib"]
DEPS = ["zmq", "msgpack", "jupyter_client", "jupyter_core", "tornado", "traitlets", "pexpect"]


def check_imports(names):
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # report every kind of failure (ImportError, OSError from ctypes...)
            print(f"FAIL import {name}: {type(e).__name__}: {e}")
            return False
    print(f"ok   import {' '.join(names)}")
    return True


def check_features():
    import ctypes
    import hashlib
    import sqlite3
    import ssl
    import zlib
    con = sqlite3.connect(":memory:")
    assert con.execute("select 40 + 2").fetchone() == (42,)
    assert zlib.decompress(zlib.compress(b"x" * 1000)) == b"x" * 1000
    assert hashlib.sha256(b"").hexdigest().startswith("e3b0c442")
    assert ctypes.sizeof(ctypes.c_void_p) == 8
    ctx = ssl.create_default_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    print(f"ok   features: {ssl.OPENSSL_VERSION}, sqlite {sqlite3.sqlite_version}")
    return True


def check_zmq_round_trip():
    import msgpack
    import zmq
    ctx = zmq.Context()
    try:
        pull = ctx.socket(zmq.PULL)
        port = pull.bind_to_random_port("tcp://127.0.0.1")
        push = ctx.socket(zmq.PUSH)
        push.connect(f"tcp://127.0.0.1:{port}")
        payload = msgpack.packb({"started_at": 1.5})
        push.send_multipart([b"status", payload])
        if not pull.poll(5000):
            print("FAIL zmq round trip: nothing received within 5 s")
            return False
        frames = pull.recv_multipart()
        assert frames == [b"status", payload], frames
        assert msgpack.unpackb(frames[1]) == {"started_at": 1.5}
        print(f"ok   zmq round trip (libzmq {zmq.zmq_version()}, pyzmq {zmq.__version__})")
        return True
    finally:
        ctx.destroy(linger=0)


def main():
    print(f"ok   python {platform.python_version()} at {sys.executable}, libc {platform.libc_ver()}")
    ok = check_imports(STDLIB) and check_features() and check_imports(DEPS) and check_zmq_round_trip()
    if ok:
        has_ipykernel = importlib.util.find_spec("ipykernel") is not None
        has_runner = importlib.util.find_spec("ai.backend.kernel") is not None
        print(f"OK runtime checks passed (runner package: {has_runner}, ipykernel: {has_ipykernel})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
