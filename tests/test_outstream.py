"""Our Python kernel's stream output in pieces (ai/backend/kernel/python/outstream.py), on a real
ipykernel started the way the runner starts it, read by a real jupyter_client."""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator

import pytest
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.manager import start_new_kernel

from ai.backend.kernel.languages.python import python_kernel_argv
from ai.backend.kernel.python import library_dir
from ai.backend.kernel.python.outstream import PIECE_CHARS
from tests.faultlib import MB, LineChecker, numbered_output_code


@pytest.fixture
def kernel() -> Iterator[BlockingKernelClient]:
    env = {**os.environ, "PYTHONPATH": str(library_dir())}
    argv = python_kernel_argv(sys.executable, env)
    extra = argv[argv.index("{connection_file}") + 1:]  # the options the runner gives the kernel
    assert any("outstream" in arg for arg in extra), extra
    km, kc = start_new_kernel(kernel_name="python3", extra_arguments=extra, env=env)
    kc.iopub_channel.socket.rcvhwm = 0
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def run_and_collect(kc: BlockingKernelClient, code: str, timeout: float) -> tuple[LineChecker, list[int], bool]:
    """Run `code`; feed its stdout to a LineChecker; sizes of its stream messages; idle seen?"""
    msg_id = kc.execute(code)
    checker, sizes, deadline = LineChecker(), [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            sizes.append(len(msg["content"]["text"]))
            checker.feed(msg["content"]["text"])
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return checker, sizes, True
    return checker, sizes, False


def test_fast_output_arrives_in_pieces_of_at_most_one_mebibyte(kernel: BlockingKernelClient) -> None:
    checker, sizes, idle = run_and_collect(kernel, numbered_output_code(40 * MB), timeout=120)
    assert idle and not checker.errors and checker.expected == 40 * 1024, (checker.errors, checker.expected)
    assert max(sizes) <= PIECE_CHARS, max(sizes)  # plain ipykernel: one message of up to ~100 MB
    assert len(sizes) >= 40


def test_a_writer_far_ahead_of_the_sending_loses_nothing(kernel: BlockingKernelClient) -> None:
    # More than 1000 pieces: a writer that ran ahead would have them leave in one burst, and the
    # kernel's iopub socket drops what exceeds its 1000-message high-water mark (the tail and the
    # idle status were lost that way before the writer was made to wait).
    checker, sizes, idle = run_and_collect(kernel, numbered_output_code(1100 * MB), timeout=600)
    assert not checker.errors and checker.expected == 1100 * 1024, (checker.errors, checker.expected)
    assert idle and len(sizes) > 1000


def test_small_output_is_unchanged(kernel: BlockingKernelClient) -> None:
    msg_id = kernel.execute("print('hello'); import sys; print('oops', file=sys.stderr)")
    seen = {}
    while True:
        msg = kernel.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            seen[msg["content"]["name"]] = seen.get(msg["content"]["name"], "") + msg["content"]["text"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    assert seen == {"stdout": "hello\n", "stderr": "oops\n"}
    reply = kernel.execute_interactive("import sys; print(type(sys.stdout).__name__)", timeout=30,
                                       output_hook=lambda m: m["msg_type"] == "stream" and seen.update(cls=m["content"]["text"]))
    assert reply["content"]["status"] == "ok" and seen["cls"].strip() == "PiecewiseOutStream"


def collect_by_parent(kc: BlockingKernelClient, code: str, timeout: float = 60) -> tuple[str, dict[str, str], dict]:
    """Run `code`; its execute_reply content and every stdout text seen meanwhile, by parent msg_id."""
    msg_id = kc.execute(code)
    texts: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        parent = msg["parent_header"].get("msg_id", "")
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            texts[parent] = texts.get(parent, "") + msg["content"]["text"]
        if parent == msg_id and msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = kc.get_shell_msg(timeout=30)
    return msg_id, texts, reply["content"]


def test_quick_writes_keep_each_threads_parent(kernel: BlockingKernelClient) -> None:
    # The quick write reuses the buffer key of the last write's parent header. A thread writing under
    # another parent, interleaved with the cell's own writes, must keep its output under its parent.
    code = ("import sys, threading\n"
            "other = dict(sys.stdout.parent_header, msg_id='other-parent')\n"
            "def run():\n"
            "    sys.stdout._parent_header.set(other)\n"
            "    for i in range(3000): sys.stdout.write(f'T{i}\\n')\n"
            "t = threading.Thread(target=run); t.start()\n"
            "for i in range(3000): sys.stdout.write(f'M{i}\\n')\n"
            "t.join(); sys.stdout.flush()\n")
    msg_id, texts, reply = collect_by_parent(kernel, code)
    assert reply["status"] == "ok", reply
    assert texts.get(msg_id) == "".join(f"M{i}\n" for i in range(3000))
    assert texts.get("other-parent") == "".join(f"T{i}\n" for i in range(3000))


def test_writes_after_a_fork_and_of_the_wrong_type_behave_as_in_ipykernel(kernel: BlockingKernelClient) -> None:
    msg_id, texts, reply = collect_by_parent(kernel, "import sys; sys.stdout.write(b'bytes')")
    assert reply["status"] == "error" and reply["ename"] == "TypeError", reply
    # a forked child writes through ipykernel's own path (its getpid check), never the quick one
    code = ("import os, sys\nprint('parent before')\npid = os.fork()\n"
            "if pid == 0:\n    print('from the child'); sys.stdout.flush(); os._exit(0)\n"
            "os.waitpid(pid, 0)\nprint('parent after')\n")
    msg_id, texts, reply = collect_by_parent(kernel, code)
    assert reply["status"] == "ok", reply
    assert texts.get(msg_id, "").startswith("parent before\n") and "parent after\n" in texts[msg_id], texts
    assert "from the child\n" in texts[msg_id], texts


def test_lines_that_do_not_divide_a_piece_give_one_message_per_piece(kernel: BlockingKernelClient) -> None:
    # 1,000-character lines: a write straddling the end of a piece used to leave its remainder as a
    # message of its own, twice the messages, and a raw client 1 GB behind lost output for it
    code = "import sys\nline = 'y' * 999 + '\\n'\nfor _ in range(10_000): sys.stdout.write(line)\n"
    msg_id = kernel.execute(code)
    sizes = []
    while True:
        msg = kernel.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            sizes.append(len(msg["content"]["text"]))
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    assert sum(sizes) == 10_000_000
    assert len(sizes) <= 10, sizes  # 9 whole pieces of 1,023 lines and the rest
    assert all(PIECE_CHARS - 1000 < size <= PIECE_CHARS for size in sizes[:-1]), sizes
