"""Large output of the REPL kernels reaches a slow reader whole (docs/languages.md#our-kernels).

A cell prints 100,000 numbered lines while the client does not read iopub for a few seconds:
every line must arrive, in order. One stream message per line would overrun the 1000-message
queues of iopub's PUB/SUB sockets, and ZeroMQ drops what does not fit.
"""
from __future__ import annotations

import contextlib
import queue
import time
from typing import Any

import pytest

from tests import kernellib
from tests.toolcheck import require_tool

LINES = 100_000
CELLS = {
    "lua": ("lua5.4", 'for i = 1, 100000 do print(string.format("line %06d", i)) end io.write("end")'),
    "php": ("php", 'for ($i = 1; $i <= 100000; $i++) { printf("line %06d\\n", $i); } echo "end";'),
}


def run_with_slow_reader(kc: Any, code: str, stall: float = 3.0, timeout: float = 120) -> tuple[dict[str, Any], str, int]:
    """Execute `code`, read nothing for `stall` seconds, then everything: (reply, stdout, stream
    messages). Reading ends at the idle status, or (when that was lost too) once the reply came
    and iopub stayed quiet for 2 s."""
    msg_id = kc.execute(code)
    time.sleep(stall)
    texts: list[str] = []
    count = 0
    reply = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=2.0)
        except queue.Empty:
            if reply is None:
                with contextlib.suppress(queue.Empty):
                    reply = kc.get_shell_msg(timeout=0.1)
            if reply is not None:
                break
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            texts.append(msg["content"]["text"])
            count += 1
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    if reply is None:
        reply = kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
    return reply["content"], "".join(texts), count


@pytest.mark.parametrize("lang", sorted(CELLS))
def test_large_output_reaches_a_slow_reader_whole(lang: str) -> None:
    tool, code = CELLS[lang]
    require_tool(tool)
    with kernellib.running_kernel(lang) as kc:
        t0 = time.monotonic()
        reply, out, messages = run_with_slow_reader(kc, code)
        elapsed = time.monotonic() - t0
    assert reply["status"] == "ok", reply
    lines = out.split("\n")
    print(f"{lang}: {len(lines)} of {LINES + 1} lines in {messages} stream messages, {elapsed:.1f} s with a 3 s stall")
    assert lines == [f"line {i:06d}" for i in range(1, LINES + 1)] + ["end"], (
        f"{len(lines)} lines arrived; first missing: "
        f"{next((i for i, line in enumerate(lines, 1) if line != f'line {i:06d}'), None)}")
    assert messages < 2000, messages  # batched: not one message per line
