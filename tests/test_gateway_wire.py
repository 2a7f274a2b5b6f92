"""The websocket framings: round trips of both encoders/decoders, and garbage that must raise
FrameError (never anything else) so the server answers instead of crashing the connection."""
from __future__ import annotations

import json
import random
import struct

import pytest

from tests.wsclient import decode_server_legacy, decode_server_v1, encode_client_v1
from ai.backend.kernel.gateway.wire import CLIENT_CHANNELS, FrameError, decode_legacy, decode_v1, encode_legacy, encode_v1, reply_type

HEADER = {"msg_id": "abc", "msg_type": "execute_request", "session": "s", "username": "u", "version": "5.3", "date": ""}
PARTS = [json.dumps(HEADER).encode(), b"{}", b'{"k": 1}', b'{"code": "1"}']


def test_v1_round_trip_with_buffers():
    msg = {"header": HEADER, "parent_header": {}, "metadata": {"k": 1}, "content": {"code": "1"},
           "buffers": [b"\x00\x01", b""]}
    decoded = decode_v1(encode_client_v1("control", msg))
    assert decoded.channel == "control" and decoded.header == HEADER
    assert [json.loads(p) for p in decoded.parts] == [HEADER, {}, {"k": 1}, {"code": "1"}]
    assert decoded.buffers == [b"\x00\x01", b""]
    out = decode_server_v1(encode_v1("iopub", PARTS + [b"buf"]))
    assert out["channel"] == "iopub" and out["content"] == {"code": "1"} and out["buffers"] == [b"buf"]


def test_legacy_round_trip_text_and_binary():
    frame, binary = encode_legacy("shell", HEADER, PARTS)
    assert not binary
    out = decode_server_legacy(frame.decode())
    assert out["msg_type"] == "execute_request" and out["msg_id"] == "abc" and out["channel"] == "shell"
    frame, binary = encode_legacy("iopub", HEADER, PARTS + [b"\xff\x00", b"xyz"])
    assert binary
    out = decode_server_legacy(frame)
    assert out["buffers"] == [b"\xff\x00", b"xyz"] and out["metadata"] == {"k": 1}
    msg = decode_legacy(json.dumps({"header": HEADER, "content": {"x": 1}}))
    assert msg.channel == "shell"  # a missing channel means shell, as in jupyter_server


@pytest.mark.parametrize("frame", [
    "", "null", "[]", "{}", '{"header": {}}', '{"header": {"msg_type": 5}}', '{"header": "x"}',
    json.dumps({"header": HEADER, "channel": "iopub"}),
    json.dumps({"header": HEADER, "content": [1]}),
    json.dumps({"header": HEADER, "parent_header": "p"}),
    b"", b"\x00\x00\x00\x00", b"\x00\x00\x00\x02\x00\x00\x00\x0c\x00\x00\x00\x01",
    b"\xff\xff\xff\xff" + b"\x00" * 8, b"\x00\x00\x00\x01\x00\x00\x00\x08not json",
])
def test_legacy_garbage_raises_frame_error(frame):
    with pytest.raises(FrameError):
        decode_legacy(frame)


def test_v1_garbage_raises_frame_error_only():
    """Mutated and random frames: each either raises FrameError with a reason, or decodes into a
    message the gateway can forward as is (known channel, header with a msg_type, JSON objects)."""
    rng = random.Random(5)
    good = encode_client_v1("shell", {"header": HEADER, "parent_header": {}, "metadata": {}, "content": {}})
    always_bad = [b"", b"\x00" * 7, struct.pack("<Q", 2 ** 60), struct.pack("<Q", 6) + b"\x00" * 48]
    for frame in always_bad:
        with pytest.raises(FrameError, match="."):
            decode_v1(frame)
    samples = []
    for _ in range(500):
        mutated = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        samples.append(bytes(mutated[: rng.randint(0, len(mutated))]))
        samples.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 80))))
    refused = accepted = 0
    for frame in samples:
        try:
            msg = decode_v1(frame)
        except FrameError as exc:
            assert str(exc), frame
            refused += 1
            continue
        accepted += 1
        assert msg.channel in CLIENT_CHANNELS, msg.channel
        assert isinstance(msg.header, dict) and isinstance(msg.header.get("msg_type"), str)
        assert len(msg.parts) == 4 and all(p.lstrip().startswith(b"{") for p in msg.parts[1:4])
    assert refused > 900 and refused + accepted == len(samples)
    assert decode_v1(good).channel == "shell"  # and the unmutated frame still decodes


def test_reply_type():
    assert reply_type("execute_request") == "execute_reply"
    assert reply_type("comm_msg") == "gateway_error"
