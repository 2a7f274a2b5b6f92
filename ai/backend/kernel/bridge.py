"""Query mode: agent ops ⇄ Jupyter messages on the main kernel (docs/query-mode.md).

One `AsyncKernelClient`: shell and stdin pumps, and for iopub a reader that keeps up with the kernel
feeding a spill queue, emptied at the agent's pace (docs/query-mode.md#slow-agents). Messages are
matched to the running query by parent `msg_id`, so gateway clients sharing the kernel never see —
or steal — ours. What a message becomes is in `outputmap.py`.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.session import DELIM
from zmq.utils.monitor import parse_monitor_message

from .agentlink import AgentLink
from .kernels import KernelHub
from .kernelwire import deserialize as _deserialize, uncopied as _uncopied
from .outputchannel import OutputChannel, Record
from .outputmap import cursor_from_payload, exit_code_of, pick_output
from .queryexec import QueryExecution as _Execution
from .spillqueue import SpillQueue, dropped_bytes_of

log = logging.getLogger(__name__)

READ_BATCH = 64  # iopub messages the reader takes per loop turn when they are already waiting
STDIN_CONNECT_WAIT = 2.0  # seconds ensure_ready waits for the stdin connection after shell+iopub
PROBE_RESEND = 1.0  # seconds ensure_ready waits for a silent kernel before it sends kernel_info again
PROBE_IOPUB_WAIT = 0.05  # seconds it waits for a probe's iopub once the kernel has answered
_DISPLAY_TYPES = frozenset({"execute_result", "display_data", "update_display_data"})
OUTPUT_MARK = b"krunner-bridge: output"  # queued output from the output channel: [mark, msg_id, name, data]


class QueryBridge:
    """Runs `code` ops on one kernel and translates its messages into agent frames."""

    def __init__(self, link: AgentLink, hub: KernelHub, kernel_id: str, *,
                 ready_timeout: float, complete_timeout: float, iopub_queue: SpillQueue | None = None,
                 output: OutputChannel | None = None) -> None:
        self.link, self.hub = link, hub
        # the kernel's iopub, read at the kernel's pace, waiting here for the agent's (docs/query-mode.md#slow-agents)
        self.iopub_queue = iopub_queue if iopub_queue is not None else SpillQueue()
        self.kernel_id = kernel_id
        self.ready_timeout, self.complete_timeout = ready_timeout, complete_timeout
        self.km = hub.get_kernel(kernel_id)
        # the kernel sends the output of this session's requests over `output` (outputchannel.py)
        self.output = output
        client_args: dict[str, Any] = {}
        if output is not None:
            client_args["session"] = session = self.km.session.clone()
            session.session = output.session_id
        self.client: AsyncKernelClient = self.km.client(**client_args)
        self._current: _Execution | None = None
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._pumps: list[asyncio.Task[None]] = []
        self._needs_ready_check = True
        self._iopub_probe: tuple[str, asyncio.Future[None]] | None = None
        self._stdin_connected = asyncio.Event()

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self.client.start_channels(shell=True, iopub=True, stdin=True, hb=False, control=False)
        # iopub is PUB/SUB: a full queue drops the kernel's messages. The reader below empties it
        # at once; no limit on ZeroMQ's side either, for the moments the loop is busy elsewhere.
        self.client.iopub_channel.socket.rcvhwm = 0
        # The kernel drops an input_request sent before our stdin socket finished connecting:
        # watch that connection, from before the socket connected (kernels.QuickConnectClient).
        monitor = getattr(self.client, "stdin_monitor", None) or self.client.stdin_channel.socket.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
        self._pumps = [
            asyncio.create_task(self._watch_stdin(monitor), name="bridge-stdin-monitor"),
            asyncio.create_task(self._read_iopub(), name="bridge-iopub-reader"),
            asyncio.create_task(self._hand_over_iopub(), name="bridge-iopub"),
            asyncio.create_task(self._pump(self.client.shell_channel, self._on_shell), name="bridge-shell"),
            asyncio.create_task(self._pump(self.client.stdin_channel, self._on_stdin), name="bridge-stdin"),
        ]
        if self.output is not None:
            self.output.start(self._on_output)
        self.hub.add_listener(self._on_kernel_event)
        await self.ensure_ready(self.ready_timeout)

    def stop_reading(self) -> None:
        """Shutdown's first step: no more kernel messages are read (the pumps end at their next await)."""
        for task in self._pumps:
            task.cancel()
        if self.output is not None:
            self.output.stop_reading()

    async def close(self) -> None:
        for task in self._pumps:
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        self.iopub_queue.close()
        if self.output is not None:
            self.output.close()
        self.client.stop_channels()

    async def _watch_stdin(self, monitor: Any) -> None:
        try:
            while True:
                event = parse_monitor_message(await monitor.recv_multipart())
                if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    self._stdin_connected.set()
                elif event["event"] == zmq.EVENT_DISCONNECTED:
                    self._stdin_connected.clear()
        finally:
            monitor.close(linger=0)

    async def ensure_ready(self, timeout: float) -> None:
        """Wait until the kernel answers `kernel_info` on shell *and* its iopub reaches us.

        After start-up and after an automatic restart our SUB socket reconnects late: what the
        kernel publishes before then (a query's output, its idle status) would be lost. One probe at
        a time (sent again after 1 s of silence; a reply to any probe counts); once the kernel has
        answered, a probe whose iopub did not come within 0.05 s is followed by another
        (docs/performance.md#cold-paths-runner-start-up-and-first-query).
        """
        if not self._needs_ready_check:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        answered: asyncio.Future[None] = loop.create_future()  # a shell reply to any of our probes
        probes: list[str] = []
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(f"kernel {self.km.kernel_name} did not answer within {timeout:.0f} s")
                msg_id = self.client.kernel_info()
                probes.append(msg_id)
                self._replies[msg_id] = reply = loop.create_future()
                reply.add_done_callback(lambda _: answered.done() or answered.set_result(None))
                self._iopub_probe = (msg_id, loop.create_future())
                await asyncio.wait((answered,), timeout=min(PROBE_RESEND, remaining))
                if answered.done():  # the kernel is up: this probe's reply (and iopub, once we are subscribed)
                    done, _ = await asyncio.wait((reply, self._iopub_probe[1]), timeout=PROBE_IOPUB_WAIT)
                    if len(done) == 2:
                        break
                    await asyncio.wait((reply,), timeout=PROBE_RESEND)  # never two probes in flight
                log.debug("kernel %s: no %s yet", self.km.kernel_name, "iopub" if answered.done() else "shell")
        finally:
            self._iopub_probe = None
            for msg_id in probes:
                self._replies.pop(msg_id, None)
        try:
            await asyncio.wait_for(self._stdin_connected.wait(), STDIN_CONNECT_WAIT)
        except TimeoutError:
            log.warning("stdin of %s not connected yet; input requests may be lost", self.km.kernel_name)
        self._needs_ready_check = False

    async def _request(self, msg_id: str, timeout: float) -> dict[str, Any]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[msg_id] = future
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._replies.pop(msg_id, None)

    # ---- ops -------------------------------------------------------------------------------
    async def execute(self, code: str) -> int:
        """Run one query; stream its output; return the exit code for the `finished` frame."""
        await self.ensure_ready(self.ready_timeout)
        loop = asyncio.get_running_loop()
        msg_id = self.client.execute(code, silent=False, store_history=True, allow_stdin=True, stop_on_error=True)
        execution = _Execution(msg_id, loop.create_future(), backlog=self.iopub_queue.__len__)
        self._current = execution
        try:
            await execution.done
        finally:
            self._current = None
            if execution.input_waiter is not None:
                execution.input_waiter.cancel()
        for note in execution.notes:  # why the query ended early (the kernel died)
            await self.link.send("stderr", note)
        return execution.exit_code

    async def complete(self, payload: dict[str, Any]) -> list[str]:
        code, cursor = cursor_from_payload(payload)
        if self._needs_ready_check:
            return []
        reply = await self._request(self.client.complete(code, cursor), self.complete_timeout)
        content = reply.get("content", {})
        if content.get("status") != "ok":
            return []
        return [m for m in content.get("matches", []) if isinstance(m, str)]

    async def interrupt(self) -> None:
        await self.hub.interrupt_kernel(self.kernel_id)

    # ---- pumps -----------------------------------------------------------------------------
    async def _pump(self, channel: Any, handler: Any) -> None:
        # Straight recv + verify/decode: jupyter_client's get_msg() first awaits a poll() of the
        # same socket, one more future and loop turn per message (docs/performance.md).
        socket = channel.socket
        while True:
            # a recv of a message that is already there never yields: under a flood of output this
            # pump would starve the loop (shutdown, other requests) without this turn
            await asyncio.sleep(0)
            await self._handle(await socket.recv_multipart(), handler)

    async def _read_iopub(self) -> None:
        """Empty the iopub socket as fast as the kernel fills it: raw bytes into the spill queue.

        Everything already there is taken in one go (up to READ_BATCH messages, through a plain
        non-blocking socket on the same ZeroMQ socket: no future per message), then the loop runs."""
        socket, queue, wanted = self.client.iopub_channel.socket, self.iopub_queue, self._wanted
        # output-channel frames the kernel wrote before it published this message go first
        drain = self.output.drain if self.output is not None else (lambda: None)
        nonblocking = zmq.Socket.shadow(socket.underlying)
        while True:
            parts = _uncopied(await socket.recv_multipart(copy=False))
            if wanted(parts):
                drain()
                queue.put(parts)
            try:
                for _ in range(READ_BATCH):
                    parts = _uncopied(nonblocking.recv_multipart(zmq.NOBLOCK, copy=False))
                    if wanted(parts):
                        drain()
                        queue.put(parts)
            except zmq.Again:
                pass
            await asyncio.sleep(0)  # as in _pump: a flood must not starve the loop

    def _wanted(self, parts: list[bytes]) -> bool:
        """Whether an iopub message may concern us: its parent is the running query or the readiness
        probe. Everything else (output of a gateway client's cells, of a query already finished) is
        dropped here, before it is queued, verified or decoded: it would be dropped after decoding
        anyway, and a notebook printing 1 GB through the shared kernel must cost the runner nothing
        (docs/performance.md#query-path). A message that cannot be read this way is kept, so that
        the decoder logs it."""
        execution, probe = self._current, self._iopub_probe
        try:
            parent = self.client.session.unpack(parts[parts.index(DELIM) + 3])
            parent_id = parent.get("msg_id")
        except Exception:  # malformed: not ours to judge here
            return True
        return ((execution is not None and parent_id == execution.msg_id)
                or (probe is not None and parent_id == probe[0]))

    def _on_output(self, record: Record) -> None:
        """A piece of output from the output channel: queued in line with iopub if it is the running
        query's (any other is a query's that already ended, or not ours)."""
        msg_id, name, data = record
        execution = self._current
        if execution is not None and msg_id == execution.msg_id:
            self.iopub_queue.put([OUTPUT_MARK, msg_id.encode(), name, data])

    async def _hand_over_output(self, parts: list[Any]) -> None:
        execution = self._current
        if execution is None or parts[1] != execution.msg_id.encode():
            return
        execution.output_started()
        try:
            await self.link.send(parts[2].decode(), parts[3])
        finally:
            execution.output_ended()

    async def _hand_over_iopub(self) -> None:
        """Decode the queued iopub messages and hand them to the agent, at the agent's pace."""
        queue = self.iopub_queue
        while True:
            if queue:  # more is waiting (a flood): let the rest of the loop run between messages
                await asyncio.sleep(0)
            parts = await queue.get()
            dropped = dropped_bytes_of(parts)
            if dropped is not None:
                if self._current is not None:
                    await self.link.send("stderr", f"\nkrunner: {dropped} bytes of output were dropped: the agent "
                                                   f"fell too far behind (more than {queue.spool_limit >> 20} MiB, "
                                                   "or the spool file could not be written)\n")
                continue
            if parts[0] == OUTPUT_MARK and len(parts) == 4:
                await self._hand_over_output(parts)
                continue
            await self._handle(parts, self._on_iopub_tracked)

    async def _handle(self, raw: list[bytes], handler: Any) -> None:
        try:
            msg = _deserialize(self.client.session, raw)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dropping an unreadable kernel message")
            return
        try:
            await handler(msg)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("failed to handle %s", msg.get("msg_type"))

    async def _on_shell(self, msg: dict[str, Any]) -> None:
        parent_id = msg.get("parent_header", {}).get("msg_id")
        log.debug("shell %s for %s", msg.get("msg_type"), parent_id)
        future = self._replies.get(parent_id)
        if future is not None and not future.done():
            future.set_result(msg)
            return
        execution = self._current
        if execution is not None and parent_id == execution.msg_id:
            content = msg.get("content", {})
            status = content.get("status")
            if status == "error" and execution.exit_code == 0:
                execution.exit_code = exit_code_of(content)
            elif status != "ok" and execution.exit_code == 0:  # "aborted" (IRkernel: "abort")
                execution.exit_code = 1
            execution.replied = True
            execution.check_done()
            if not execution.idle:
                execution.arm_idle_grace()

    async def _on_iopub_tracked(self, msg: dict[str, Any]) -> None:
        """`_on_iopub`, telling the running query while its output is being handed to the agent
        (the idle wait, `_Execution.arm_idle_grace`)."""
        execution = self._current
        if execution is None or msg.get("parent_header", {}).get("msg_id") != execution.msg_id:
            await self._on_iopub(msg)
            return
        execution.output_started()
        try:
            await self._on_iopub(msg)
        finally:
            execution.output_ended()

    async def _on_iopub(self, msg: dict[str, Any]) -> None:
        parent_id = msg.get("parent_header", {}).get("msg_id")
        probe = self._iopub_probe
        if probe is not None and parent_id == probe[0] and not probe[1].done():
            probe[1].set_result(None)
        execution = self._current
        if execution is None or parent_id != execution.msg_id:
            return
        msg_type = msg["msg_type"]
        content = msg.get("content", {})
        send = self.link.send
        if msg_type == "stream":
            await send("stderr" if content.get("name") == "stderr" else "stdout", content.get("text", ""))
        elif msg_type in _DISPLAY_TYPES:
            frame = pick_output(content.get("data", {}))
            if frame is not None:
                await send(*frame)
        elif msg_type == "error":
            execution.exit_code = exit_code_of(content)
            await send("stderr", "\n".join(content.get("traceback", [])) or f"{content.get('ename')}: {content.get('evalue')}")
        elif msg_type == "status" and content.get("execution_state") == "idle":
            execution.idle = True
            execution.check_done()

    async def _on_stdin(self, msg: dict[str, Any]) -> None:
        execution = self._current
        if msg["msg_type"] != "input_request" or execution is None:
            return
        content = msg.get("content", {})
        prompt = content.get("prompt", "")
        if prompt:
            await self.link.send("stdout", prompt)
        await self.link.send("waiting-input", {"is_password": bool(content.get("password", False))})
        if execution.input_waiter is not None:
            execution.input_waiter.cancel()
        execution.input_waiter = asyncio.create_task(self._answer_input(), name="bridge-input")

    async def _answer_input(self) -> None:
        text = await self.link.next_user_input()
        self.client.input(text)

    # ---- kernel death ----------------------------------------------------------------------
    def _on_kernel_event(self, event: str, kernel_id: str) -> None:
        if kernel_id != self.kernel_id or event not in ("died", "dead", "restarted"):
            return
        self._needs_ready_check = True
        execution = self._current
        if execution is None or event == "restarted":
            return
        code = _process_exit_code(self.km)
        execution.exit_code = code if code else 1
        execution.died = True
        if event == "died":
            note = (f"\nThe {self.km.kernel_name} kernel died unexpectedly (exit status {code}); "
                    "it is being restarted and its state was lost. Run the query again.\n")
        else:
            note = f"\nThe {self.km.kernel_name} kernel died and could not be restarted.\n"
        execution.notes.append(note)
        execution.check_done()


def _process_exit_code(km: Any) -> int:
    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is None:
        return 0
    code = process.poll()
    return int(code) if code is not None else 0
