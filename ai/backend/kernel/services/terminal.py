"""A browser terminal on the `ttyd` port when no ttyd binary exists (terminado on tornado).

It runs in the runner's event loop. Each websocket gets its own shell in a pty (terminado's
`UniqueTermManager`), started with the runner's child env in the work dir. Two websocket dialects:
  * `/websocket`: terminado's JSON messages (`["stdin", text]`, `["set_size", rows, cols]` in;
    `["setup", {}]`, `["stdout", text]`, `["disconnect", 1]` out);
  * `/ws` (sub-protocol `tty`): ttyd's framing, so ttyd clients work unchanged (first message JSON
    `{"columns", "rows"}`, then `0`+input / `1`+JSON resize in; `0`+output, `1`+title, `2`+prefs out).
`/` serves a small xterm.js page speaking the first dialect.

Both websockets refuse (403) a browser Origin other than the terminal's own host or one of the
allow-list (`KRUNNER_ALLOW_ORIGINS`, see docs/security.md): a shell must not be drivable by
whatever page the user happens to visit.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tornado.web
import tornado.websocket
from tornado.httpserver import HTTPServer

from ..origin import OriginPolicy
from .reaper import watch_session

log = logging.getLogger(__name__)

try:  # terminado is an optional dependency: without it there is no fallback terminal.
    from terminado import TermSocket, UniqueTermManager
except ImportError:  # pragma: no cover - depends on the environment
    TermSocket = UniqueTermManager = None  # type: ignore[assignment,misc]


def available() -> bool:
    return UniqueTermManager is not None


_INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><title>Terminal</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@xterm/xterm@5.5.0/css/xterm.css">
<style>html,body,#t{height:100%;margin:0;background:#000}
#t pre{margin:0;padding:4px;color:#ddd;font:14px monospace;white-space:pre-wrap;word-break:break-all}</style></head>
<body><div id="t"></div>
<script src="https://cdn.jsdelivr.net/npm/@xterm/xterm@5.5.0/lib/xterm.js"></script>
<script src="https://cdn.jsdelivr.net/npm/@xterm/addon-fit@0.10.0/lib/addon-fit.js"></script>
<script>
const url = new URL("websocket", location.href); url.protocol = url.protocol.replace("http", "ws");
const ws = new WebSocket(url);
const send = (d) => ws.send(JSON.stringify(["stdin", d]));
let write;
if (window.Terminal && window.FitAddon) {
  const term = new Terminal({cursorBlink: true}), fit = new FitAddon.FitAddon();
  term.loadAddon(fit); term.open(document.getElementById("t")); fit.fit();
  const size = () => ws.send(JSON.stringify(["set_size", term.rows, term.cols]));
  ws.onopen = () => { size(); term.focus(); };
  write = (text) => term.write(text);
  term.onData(send);
  window.addEventListener("resize", () => { fit.fit(); size(); });
} else {
  // xterm.js could not be loaded (no internet in the container): a plain-text terminal.
  const pre = document.createElement("pre"); document.getElementById("t").appendChild(pre);
  const keys = {Enter: "\\r", Backspace: "\\x7f", Tab: "\\t", Escape: "\\x1b",
                ArrowUp: "\\x1b[A", ArrowDown: "\\x1b[B", ArrowRight: "\\x1b[C", ArrowLeft: "\\x1b[D"};
  ws.onopen = () => ws.send(JSON.stringify(["set_size", 24, 80]));
  write = (text) => {
    let out = pre.textContent;
    for (const ch of text.replace(/\\x1b\\[[0-9;?]*[ -\\/]*[@-~]|\\x1b\\][^\\x07]*(\\x07|\\x1b\\\\)|\\x1b[()][A-Z0-9]|\\x1b[=>]/g, "")) {
      if (ch === "\\b") out = out.slice(0, -1);
      else if (ch !== "\\r" && ch !== "\\x07") out += ch;
    }
    pre.textContent = out.slice(-200000); window.scrollTo(0, document.body.scrollHeight);
  };
  document.addEventListener("keydown", (e) => {
    let data = keys[e.key];
    if (!data && e.ctrlKey && e.key.length === 1) data = String.fromCharCode(e.key.toUpperCase().charCodeAt(0) - 64);
    else if (!data && e.key.length === 1 && !e.metaKey) data = e.key;
    if (data) { e.preventDefault(); send(data); }
  });
  document.addEventListener("paste", (e) => { send(e.clipboardData.getData("text")); e.preventDefault(); });
}
ws.onmessage = (ev) => { const m = JSON.parse(ev.data);
  if (m[0] === "stdout") write(m[1]); else if (m[0] === "disconnect") write("\\r\\n[disconnected]\\r\\n"); };
</script></body></html>
"""


if UniqueTermManager is not None:

    class _TermManager(UniqueTermManager):  # type: ignore[misc,valid-type]
        """terminado's manager, but children get the runner's env rather than ours."""

        def __init__(self, base_env: Mapping[str, str], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.base_env = dict(base_env)

        def new_terminal(self, **kwargs: Any) -> Any:
            term = super().new_terminal(**kwargs)
            watch_session(term.ptyproc.pid)  # a shell's background jobs end with the runner too
            return term

        def make_term_env(self, height: int = 25, width: int = 80, winheight: int = 0, winwidth: int = 0, **kwargs: Any) -> dict[str, str]:
            env = dict(self.base_env)
            env["TERM"] = "xterm-256color"
            env["COLUMNS"], env["LINES"] = str(width), str(height)
            return env

    class _TermSocket(TermSocket):  # type: ignore[misc,valid-type]
        def initialize(self, term_manager: Any, origins: OriginPolicy) -> None:  # type: ignore[override]
            super().initialize(term_manager)
            self.origins = origins

        def check_origin(self, origin: str) -> bool:
            return _origin_ok(self, origin)


def _origin_ok(handler: tornado.websocket.WebSocketHandler, origin: str) -> bool:
    """Called by tornado only when the browser sent an Origin; a refusal becomes a 403."""
    ok = handler.origins.allows(origin, handler.request.headers.get("Host"))  # type: ignore[attr-defined]
    if not ok:
        log.warning("web terminal: refused a websocket from origin %r (host %r); allow it with %s",
                    origin, handler.request.headers.get("Host"), "KRUNNER_ALLOW_ORIGINS")
    return ok


class _IndexHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.write(_INDEX)


class _TokenHandler(tornado.web.RequestHandler):
    """ttyd's web client asks for an auth token first; there is none."""

    def get(self) -> None:
        self.write({"token": ""})


class _TtydSocket(tornado.websocket.WebSocketHandler):
    """ttyd's websocket dialect on top of the terminado manager."""

    def initialize(self, term_manager: Any, origins: OriginPolicy) -> None:
        self.term_manager = term_manager
        self.origins = origins
        self.terminal: Any = None
        self.size: tuple[int | None, int | None] = (None, None)

    def check_origin(self, origin: str) -> bool:
        return _origin_ok(self, origin)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return "tty" if "tty" in subprotocols else None

    def _set_size(self, raw: bytes) -> None:
        try:
            info = json.loads(raw)
            self.size = (int(info["rows"]), int(info["columns"]))
        except (ValueError, TypeError, KeyError) as exc:  # keep the previous size, keep the shell
            log.info("web terminal: ignoring a malformed resize message %r (%s)", raw[:80], exc)
            return
        if self.terminal is not None:
            self.terminal.resize_to_smallest()

    def on_message(self, message: str | bytes) -> None:
        data = message.encode() if isinstance(message, str) else message
        if self.terminal is None:
            self._set_size(data)
            self.terminal = self.term_manager.get_terminal()
            self.terminal.clients.append(self)
            self.terminal.resize_to_smallest()
            self.write_message(b"1" + b"terminal", binary=True)
            self.write_message(b"2" + b"{}", binary=True)
            for chunk in list(self.terminal.read_buffer):
                self.on_pty_read(chunk)
            return
        cmd, payload = data[:1], data[1:]
        if cmd == b"0":
            self.terminal.ptyproc.write(payload.decode("utf-8", "replace"))
        elif cmd == b"1":
            self._set_size(payload)

    def on_pty_read(self, text: str) -> None:
        # A closed socket is being torn down (on_close detaches it); the shell keeps its buffer.
        with contextlib.suppress(tornado.websocket.WebSocketClosedError):
            self.write_message(b"0" + text.encode("utf-8"), binary=True)

    def on_pty_died(self) -> None:
        self.terminal = None
        self.close()

    def on_close(self) -> None:
        if self.terminal is not None:
            with contextlib.suppress(ValueError):  # already removed by on_pty_died
                self.terminal.clients.remove(self)
        self.term_manager.client_disconnected(self)


class WebTerminal:
    """The fallback `ttyd`: a tornado server on the runner's loop; stop() ends every shell."""

    def __init__(self, port: int, bind_ip: str, shell_argv: Sequence[str], env: Mapping[str, str], cwd: str | Path,
                 allow_origins: Sequence[str] = ()) -> None:
        self.port = port
        # TODO(merge): the runner app's allow-list trait; until then $KRUNNER_ALLOW_ORIGINS.
        self.origins = OriginPolicy(allow_origins)
        self.bind_ip = "" if bind_ip in ("*", "0.0.0.0") else bind_ip
        self.shell_argv = list(shell_argv)
        self.env = env
        self.cwd = str(cwd)
        self._server: HTTPServer | None = None
        self._manager: Any = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if not available():
            raise FileNotFoundError("neither a ttyd binary nor the terminado package is available")
        manager = _TermManager(self.env, shell_command=self.shell_argv, term_settings={"cwd": self.cwd})
        app = tornado.web.Application([
            (r"/", _IndexHandler),
            (r"/token", _TokenHandler),
            (r"/websocket", _TermSocket, {"term_manager": manager, "origins": self.origins}),
            (r"/ws", _TtydSocket, {"term_manager": manager, "origins": self.origins}),
        ], websocket_ping_interval=10)
        server = HTTPServer(app)
        try:
            server.listen(self.port, address=self.bind_ip or "0.0.0.0")
        except OSError:
            await manager.shutdown()
            raise
        self._server, self._manager = server, manager
        log.info("web terminal (terminado) listening on %s:%d", self.bind_ip or "0.0.0.0", self.port)

    async def stop(self) -> None:
        server, manager = self._server, self._manager
        self._server = self._manager = None
        if server is not None:
            server.stop()
            try:
                await asyncio.wait_for(server.close_all_connections(), 0.5)
            except asyncio.TimeoutError:
                log.warning("web terminal: connections still open after 0.5 s; stopping anyway")
        if manager is not None:
            try:
                await asyncio.wait_for(manager.shutdown(), 1.0)
            except asyncio.TimeoutError:
                log.warning("web terminal: shells did not exit within 1 s of SIGHUP/SIGKILL")
