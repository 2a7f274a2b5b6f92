"""The runner's kernel clients (kernels.QuickConnectClient) on a real ipykernel: the stdin socket's
handshake is reported even when the kernel already listens when the client connects (a preloaded
main kernel binds a few ms after its launch returns; the bridge used to wait 2 s for a handshake
event that had come before its monitor existed)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import zmq
from jupyter_client.manager import AsyncKernelManager
from zmq.utils.monitor import parse_monitor_message

from ai.backend.kernel.kernels import QuickConnectClient


@pytest.fixture
async def listening_kernel() -> AsyncIterator[AsyncKernelManager]:
    km = AsyncKernelManager(kernel_name="python3")
    await km.start_kernel()
    client = km.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)  # the kernel listens on all its ports from here on
    finally:
        client.stop_channels()
    try:
        yield km
    finally:
        await km.shutdown_kernel(now=True)


async def test_the_stdin_handshake_is_reported_when_the_kernel_already_listens(
        listening_kernel: AsyncKernelManager) -> None:
    for _ in range(20):
        client = QuickConnectClient(parent=listening_kernel, session=listening_kernel.session)
        client.load_connection_info(listening_kernel.get_connection_info())
        client.start_channels(shell=True, iopub=False, stdin=True, hb=False, control=False)
        try:
            assert client.stdin_monitor is not None
            client.kernel_info()  # once it is answered, stdin has (almost surely) connected too: a
            await client.get_shell_msg(timeout=10)  # monitor attached only now would miss that
            event = parse_monitor_message(await asyncio.wait_for(client.stdin_monitor.recv_multipart(), 2))
            assert event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED, event
        finally:
            client.stdin_monitor.close(linger=0)
            client.stop_channels()
