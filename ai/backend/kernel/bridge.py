"""Query mode: agent ops ⇄ Jupyter messages on the main kernel (docs/query-mode.md).

One `AsyncKernelClient` with three pumps (iopub, shell, stdin). Messages are matched to the running
query by parent `msg_id`, so gateway clients sharing the kernel never see — or steal — ours.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from zmq.utils.monitor import parse_monitor_message

from .agentlink import AgentLink
from .kernels import KernelHub
from .queryexec import QueryExecution as _Execution

log = logging.getLogger(__name__)

# Rich MIME types in order of preference; text/plain is used only when none of these is present.
MEDIA_PREFERENCE = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/svg+xml",
    "text/html",
    "text/markdown",
    "text/latex",
    "application/json",
)
_BINARY_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif"})
STDIN_CONNECT_WAIT = 2.0  # seconds ensure_ready waits for the stdin connection after shell+iopub
PROBE_RESEND = 1.0  # seconds ensure_ready waits for a silent kernel before it sends kernel_info again
PROBE_IOPUB_WAIT = 0.05  # seconds it waits for a probe's iopub once the kernel has answered
_DISPLAY_TYPES = frozenset({"execute_result", "display_data", "update_display_data"})


def pick_output(data: dict[str, Any]) -> tuple[str, str] | None:
    """The frame for a Jupyter mime bundle: ("media", json) for rich data, ("stdout", text) for plain.

    A vendor type (`application/x-*`, `application/vnd.*`, but not Jupyter's own widget/front-end
    types) is what the agent's client asked for (the original's drawing, git graph), so it goes
    first, its JSON value kept as is; then audio/video as data URIs; then the generic rich types.
    """
    # the original's media whose data is JSON: a bundle can only carry it as text (nbformat)
    json_text_types = ("application/vnd.sorna.gitgraph",)
    for mime, value in data.items():
        if mime.startswith(("application/x-", "application/vnd.")) and not mime.startswith("application/vnd.jupyter"):
            if mime in json_text_types and isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            if not isinstance(value, (str, int, float, bool, list, dict)) and value is not None:
                value = base64.b64encode(value).decode() if isinstance(value, bytes) else str(value)
            return "media", json.dumps({"type": mime, "data": value})
    for mime, value in data.items():
        if mime.startswith(("audio/", "video/")) and isinstance(value, str):
            uri = value if value.startswith("data:") else f"data:{mime};base64,{''.join(value.split())}"
            return "media", json.dumps({"type": mime, "data": uri})
    for mime in MEDIA_PREFERENCE:
        if mime in data:
            return "media", json.dumps({"type": mime, "data": _media_data(mime, data[mime])})
    if "text/plain" in data:
        return "stdout", _as_text(data["text/plain"])
    for mime, value in data.items():  # an unknown rich type: still deliver it rather than drop it
        return "media", json.dumps({"type": mime, "data": _media_data(mime, value)})
    return None


def _media_data(mime: str, value: Any) -> str:
    if mime in _BINARY_IMAGES:
        b64 = value if isinstance(value, str) else base64.b64encode(value).decode()
        return f"data:{mime};base64,{''.join(b64.split())}"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return json.dumps(value)


def _as_text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def exit_code_of(content: dict[str, Any]) -> int:
    """Exit code for a Jupyter `error`: 1, or the SystemExit value (docs/protocol.md#exit-codes)."""
    if content.get("ename") != "SystemExit":
        return 1
    value = str(content.get("evalue", "")).strip()
    if not value or value == "None":
        return 0
    try:
        return int(value)
    except ValueError:
        return 1


def cursor_from_payload(payload: dict[str, Any]) -> tuple[str, int]:
    """(code, cursor_pos) for `complete_request` from the agent's flattened options.

    The agent sends the text before the cursor as `code` and the text after it as `post`; clients
    that send the whole cell instead give the cursor as `row`/`col` (0-based).
    """
    code = str(payload.get("code") or "")
    post = payload.get("post")
    if isinstance(post, str) and post:
        return code + post, len(code)
    row, col = payload.get("row"), payload.get("col")
    if isinstance(row, int) and isinstance(col, int) and "\n" in code:
        lines = code.split("\n")
        row = max(0, min(row, len(lines) - 1))
        col = max(0, min(col, len(lines[row])))
        return code, sum(len(line) + 1 for line in lines[:row]) + col
    return code, len(code)


class QueryBridge:
    """Runs `code` ops on one kernel and translates its messages into agent frames."""

    def __init__(self, link: AgentLink, hub: KernelHub, kernel_id: str, *,
                 ready_timeout: float, complete_timeout: float) -> None:
        self.link, self.hub = link, hub
        self.kernel_id = kernel_id
        self.ready_timeout, self.complete_timeout = ready_timeout, complete_timeout
        self.km = hub.get_kernel(kernel_id)
        self.client: AsyncKernelClient = self.km.client()
        self._current: _Execution | None = None
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._pumps: list[asyncio.Task[None]] = []
        self._needs_ready_check = True
        self._iopub_probe: tuple[str, asyncio.Future[None]] | None = None
        self._stdin_connected = asyncio.Event()

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self.client.start_channels(shell=True, iopub=True, stdin=True, hb=False, control=False)
        # iopub is PUB/SUB: a full queue drops the kernel's messages. While a slow agent holds the
        # pump, its output waits in our queue instead of being lost (libzmq applies this to the
        # connected pipe).
        self.client.iopub_channel.socket.rcvhwm = 0
        # The kernel drops an input_request sent before our stdin socket finished connecting:
        # watch that connection (the kernel binds ~0.5 s after launch, so no event is missed).
        monitor = self.client.stdin_channel.socket.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
        )
        self._pumps = [
            asyncio.create_task(self._watch_stdin(monitor), name="bridge-stdin-monitor"),
            asyncio.create_task(self._pump(self.client.iopub_channel, self._on_iopub_tracked), name="bridge-iopub"),
            asyncio.create_task(self._pump(self.client.shell_channel, self._on_shell), name="bridge-shell"),
            asyncio.create_task(self._pump(self.client.stdin_channel, self._on_stdin), name="bridge-stdin"),
        ]
        self.hub.add_listener(self._on_kernel_event)
        await self.ensure_ready(self.ready_timeout)

    def stop_reading(self) -> None:
        """Shutdown's first step: no more kernel messages are read (the pumps end at their next await)."""
        for task in self._pumps:
            task.cancel()

    async def close(self) -> None:
        for task in self._pumps:
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
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
        execution = _Execution(msg_id, loop.create_future())
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
        socket, session = channel.socket, self.client.session
        while True:
            # a recv of a message that is already there never yields: under a flood of output this
            # pump would starve the loop (shutdown, other requests) without this turn
            await asyncio.sleep(0)
            try:
                _, parts = session.feed_identities(await socket.recv_multipart())
                msg = session.deserialize(parts)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dropping an unreadable kernel message")
                continue
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
