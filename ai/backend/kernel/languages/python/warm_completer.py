# The Python kernel's side of a warm first completion (docs/performance.md#the-first-completion).
#
# A fresh ipykernel's first completion parses typeshed's stubs and the modules involved (about 2.5 s
# on a quiet 2-core machine for `import os\nos.pa`; the next one costs 0.1-0.2 s). kernel_launcher.py
# calls install() on the kernel's completer with a way to start completion_helper.py, which does that
# parsing in another process at idle priority. The helper starts from the kernel's event loop, so
# between two cells, START_AFTER s after the completer is made, or at the first completion that
# needs it (docs/performance.md#the-first-completion).
# install() replaces the completer's jedi matcher only:
#   - while the kernel's own jedi is cold and the helper is warm (or says so within WARM_GRACE s;
#     WARM_GRACE_CACHED s when it found the cache filled and its priority could be raised to the
#     kernel's for the wait; no wait when it found the cache empty),
#     the text before the cursor goes to the helper, which answers with jedi's completions for it
#     (the text only), joined by IPython's namespace matches (what jedi would add from live objects);
#     when it is not warm yet (a fresh machine: nothing in the cache), or does not answer within
#     HELPER_WAIT s, the kernel uses its own jedi as without any of this, and it loads what the
#     helper has parsed so far from the cache instead of parsing it again;
#   - after the helper's first answer, a thread waits until the kernel has been idle (no cell
#     running, no completion) for IDLE_BEFORE_WARM_UP s; then the kernel's main thread redoes that
#     answer and OWN_WARM_UP with its own jedi (from the pickles: a fraction of a second each), one
#     per pause; then the helper is stopped and the kernel's own jedi, which also sees the live
#     namespace, answers from then on.
# None of this work runs in the kernel while it starts, runs cells, or stays busy: a warm-up thread
# in the kernel lengthened the latency tail of its first queries (why it had been turned off).
#
# Self-contained (stdlib, IPython, jedi), loaded by path (runpy.run_path) in any interpreter that
# has ipykernel; Python >= 3.8.
import inspect
import json
import os
import re
import select
import sys
import threading
import time

WARM_GRACE = 0.3  # s a completion waits for the helper to be warm before using the kernel's own jedi
WARM_GRACE_CACHED = 2.5  # the same once the helper said the cache was filled before (its warm-up is
# then ~0.65 s of CPU, partly done) and runs at the kernel's priority again: the kernel's own jedi
# would start that work from zero
HELPER_WAIT = 2.0  # s a completion waits for a warm helper's answer (the runner gives up at 5 s)
IDLE_BEFORE_WARM_UP = 2.0  # s without a cell or a completion before the kernel warms its own jedi
# s after the completer is made (mid-way through the kernel's init) before the helper may start: past
# the kernel's start-up and a first query; a cell running then (a flood of output) goes first
START_AFTER = float(os.environ.get("KRUNNER_HELPER_START_AFTER") or 1.0)
UNKNOWN_TYPE = "<unknown>"
# besides the helper's first answer, the kernel's own warm-up redoes these (names, a module's attributes)
OWN_WARM_UP = ({"code": "pri", "line": 1, "column": 3}, {"code": "import os\nos.pa", "line": 2, "column": 5})


ATTRIBUTE_AT_CURSOR = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\.(\w*)$")
IMPORT_LINE = re.compile(r"^\s*import\s+([\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*)\s*(?:#.*)?$")
FROM_IMPORT_LINE = re.compile(r"^\s*from\s+([\w.]+)\s+import\s+(\w+(?:\s+as\s+\w+)?(?:\s*,\s*\w+(?:\s+as\s+\w+)?)*)\s*(?:#.*)?$")
SIGNATURE_BUDGET = 0.02  # s for signatures of functions in one answer


def imported_bindings(text):
    """name -> what the import statements in `text` bind it to: ("module", "a.b") or
    ("attribute", "a.b", "c") (one-line `import` and `from ... import` statements only)."""
    bound = {}
    for line in text.split("\n"):
        match = IMPORT_LINE.match(line)
        if match:
            for item in match.group(1).split(","):
                module, _, alias = (part.strip() for part in item.strip().partition(" as "))
                bound[alias or module.split(".")[0]] = ("module", module if alias else module.split(".")[0])
            continue
        match = FROM_IMPORT_LINE.match(line)
        if match and not match.group(1).startswith("."):
            for item in match.group(2).split(","):
                name, _, alias = (part.strip() for part in item.strip().partition(" as "))
                bound[alias or name] = ("attribute", match.group(1), name)
    return bound


def _loaded(binding):
    """The object an import would bind, taken from the modules this process has already loaded
    (never importing anything); None when it has not been loaded."""
    module = sys.modules.get(binding[1])
    if module is None or binding[0] == "module":
        return module
    if hasattr(module, binding[2]):
        return getattr(module, binding[2])
    return sys.modules.get(binding[1] + "." + binding[2])


def _kind(value):
    if inspect.ismodule(value):
        return "module"
    if inspect.isclass(value):
        return "class"
    if inspect.isroutine(value):
        return "function"
    return "instance"


def loaded_module_matches(before_cursor, namespace):
    """Completions of `name.attr` where `name` is bound by an import in the text (not yet run, so
    not in `namespace`) to a module this process has already loaded (os, sys, re, json, ... in
    any kernel): its live attributes, which is what the import will bind. None when that is not the
    case: then jedi answers. A cold jedi takes seconds over the same question."""
    found = ATTRIBUTE_AT_CURSOR.search(before_cursor.rsplit("\n", 1)[-1])
    if found is None:
        return None
    head, *path = found.group(1).split(".")
    binding = imported_bindings(before_cursor).get(head)
    if head in namespace or binding is None:
        return None
    value = _loaded(binding)
    try:
        for name in path:
            value = getattr(value, name) if value is not None and inspect.ismodule(value) else None
    except Exception:  # noqa: BLE001 - a module __getattr__ that fails: leave it to jedi
        return None
    if value is None:
        return None
    stem = found.group(2)
    deadline = time.monotonic() + SIGNATURE_BUDGET
    out = []
    for name in sorted(n for n in dir(value) if n.startswith(stem)):
        attribute = getattr(value, name, None)
        kind, signature = _kind(attribute), ""
        if kind == "function" and time.monotonic() < deadline:
            try:
                signature = name + str(inspect.signature(attribute))
            except (TypeError, ValueError):
                pass
        out.append(HelperCompletion(name, name, name[len(stem):], kind, signature))
    return out


class _Signature:
    def __init__(self, text):
        self.text = text

    def to_string(self):
        return self.text


class HelperCompletion:
    """What IPython reads of a jedi completion: its names, type and first signature."""

    def __init__(self, name, name_with_symbols, complete, type_, signature):
        self.name, self.name_with_symbols, self.complete = name, name_with_symbols, complete
        self.type, self._signature = type_ or UNKNOWN_TYPE, signature

    def get_signatures(self):
        return [_Signature(self._signature)] if "(" in (self._signature or "") else []


class Helper:
    """One request at a time over the helper's pipes; any failure retires it for good. Its process
    is started by start(), once."""

    def __init__(self, start_process):
        self._start_process = start_process  # -> a Popen, or None when it cannot start
        self.process = None
        self.started = False  # start() was called (by the kernel's loop, or by a completion)
        self.closed = False
        self.warm = False  # it said it is warm
        self.cached = None  # it said whether the cache was filled before it started
        self.answered = 0  # completions it answered (tests and benchmarks read these three)
        self.loaded_answers = 0  # completions answered from loaded modules while it was not asked
        self.waited = 0.0  # s completions waited for it to be warm
        self._buffer = b""

    @property
    def alive(self):
        return self.process is not None and self.process.poll() is None

    def start(self):
        """Start the process unless it was started or retired before; whether it runs."""
        if not self.started and not self.closed:
            self.started = True  # once only, whatever happens
            try:
                self.process = self._start_process()
            except Exception:  # noqa: BLE001 - no helper: the kernel's own jedi, as without one
                self.process = None
        return self.alive

    def wait_warm(self, timeout=None):
        """Whether the helper is warm, after waiting WARM_GRACE s for it to say so (WARM_GRACE_CACHED
        s once it said the cache was filled before and runs at the kernel's priority again; not at all
        once it said the cache was empty), or `timeout` s whatever it said."""
        start = time.monotonic()
        boosted = not self.warm and self.alive and self.cached is not False and self.boost()
        try:
            while not self.warm and self.alive and (timeout is not None or self.cached is not False):
                wait = timeout if timeout is not None else WARM_GRACE_CACHED if self.cached and boosted else WARM_GRACE
                message = self._read(start + wait - time.monotonic())
                self.cached = message.get("cached", self.cached)
                self.warm = bool(message.get("warm"))
        except TimeoutError:
            return False
        except Exception:  # noqa: BLE001 - gone or garbled
            self.close()
        finally:
            self.waited += time.monotonic() - start
        return self.warm and self.alive

    def boost(self):
        """The kernel waits for it: its priority back to the kernel's, where the system allows that
        (CAP_SYS_NICE, as root usually has); otherwise it stays at idle priority."""
        try:
            os.sched_setscheduler(self.process.pid, os.SCHED_OTHER, os.sched_param(0))
            os.setpriority(os.PRIO_PROCESS, self.process.pid, os.getpriority(os.PRIO_PROCESS, 0))
            return True
        except (AttributeError, OSError):
            return False

    def ask(self, request, timeout):
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
            reply = self._read(timeout)
            if "matches" not in reply:
                raise RuntimeError(reply.get("error"))
            return reply
        except Exception:  # noqa: BLE001 - late, broken or gone: the kernel's own jedi takes over
            self.close()
            return None

    def _read(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def close(self):
        """Stop it at once (its pickles are written whole, by rename, so nothing half-written stays)."""
        self.closed = True
        process, self.process = self.process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if process.poll() is None:
            process.kill()
        process.wait()


def install(completer, start_process):
    """Route `completer`'s jedi matcher to a helper (`start_process()` starts it) until the kernel's
    own jedi is warm."""
    helper = Helper(start_process)
    original = getattr(completer, "_jedi_matches", None)
    if original is None or not getattr(completer, "use_jedi", False):
        helper.close()
        return None
    from IPython.core.completer import cursor_to_position

    shell = completer.shell
    own_warm = threading.Event()
    activity = {"last": time.monotonic(), "busy": False}

    def pre_execute():
        activity["busy"], activity["last"] = True, time.monotonic()

    def post_execute():
        activity["busy"], activity["last"] = False, time.monotonic()

    def idle_for():
        return 0.0 if activity["busy"] else time.monotonic() - activity["last"]

    def start_once_the_kernel_runs():
        """A thread that only sleeps: after START_AFTER s, once the kernel's event loop exists, has
        the loop start the helper (it runs the callback once the kernel serves)."""
        time.sleep(START_AFTER)
        while not helper.started and not helper.closed:
            loop = getattr(getattr(shell, "kernel", None), "io_loop", None)
            if loop is not None:
                loop.add_callback(helper.start)
                return
            time.sleep(0.05)

    def own_warm_up(requests):
        """A watcher thread that only sleeps: each pause of the kernel, it has the kernel's main
        thread (its event loop) redo one of the helper's answers with the kernel's own jedi, from
        the pickles. Never jedi in this thread: jedi and IPython's completer both change the
        process-wide `warnings` state, so they must not overlap."""
        loop = getattr(getattr(shell, "kernel", None), "io_loop", None)
        pending = list(requests)
        try:
            while pending and loop is not None:
                while idle_for() < IDLE_BEFORE_WARM_UP:
                    time.sleep(max(0.05, IDLE_BEFORE_WARM_UP - idle_for()))
                done = threading.Event()
                loop.add_callback(warm_step, pending, done)
                done.wait()
        finally:
            if loop is not None:
                loop.add_callback(finish_warm_up)

    def warm_step(pending, done):
        try:
            if idle_for() >= IDLE_BEFORE_WARM_UP:  # still idle now that the loop runs it
                import jedi

                request = pending.pop(0)
                jedi.Interpreter(request["code"], [{}]).complete(line=request["line"], column=request["column"])
        except Exception:  # noqa: BLE001 - the kernel's own first completion is then a cold one
            pending.clear()
        finally:
            done.set()

    def finish_warm_up():
        own_warm.set()
        completer.__dict__.pop("_jedi_matches", None)  # IPython's own from now on, no wrapper
        helper.close()
        for event, callback in (("pre_execute", pre_execute), ("post_execute", post_execute)):
            try:
                shell.events.unregister(event, callback)
            except ValueError:
                pass

    def attribute_filter(before_cursor):
        """IPython's own filter for `obj.` completions (its omit__names setting)."""
        if before_cursor.endswith("."):
            if completer.omit__names == 2:
                return lambda c: not c.name.startswith("_")
            if completer.omit__names == 1:
                return lambda c: not (c.name.startswith("__") and c.name.endswith("__"))
        return lambda c: True

    def from_helper(cursor_column, cursor_line, text):
        if not helper.wait_warm():  # still parsing: no sooner than the kernel's own jedi,
            return None  # which now loads what the helper has parsed so far from the pickles
        offset = cursor_to_position(text, cursor_line, cursor_column)
        request = {"code": text[:offset], "line": cursor_line + 1, "column": cursor_column}
        reply = helper.ask(request, HELPER_WAIT)
        if reply is None:
            return None
        keep = attribute_filter(text[:offset])
        helper.answered += 1
        if helper.answered == 1:  # from now on the kernel warms its own jedi in its pauses
            shell.events.register("pre_execute", pre_execute)
            shell.events.register("post_execute", post_execute)
            threading.Thread(target=own_warm_up, args=([request, *OWN_WARM_UP],),
                             name="krunner-warm-completer", daemon=True).start()
        matches = [HelperCompletion(*m) for m in reply["matches"]]
        return iter([c for c in matches + namespace_matches(text[:offset], {c.name for c in matches}) if keep(c)])

    def namespace_matches(before_cursor, seen):
        """What jedi would add from the live namespace (it knows it, the helper does not): IPython's
        own namespace matcher, the one it uses instead of jedi when jedi is off."""
        token = completer.splitter.split_line(before_cursor.rsplit("\n", 1)[-1])
        stem = token.rpartition(".")[2]
        out = []
        try:
            found = completer.python_matches(token) if token else []
        except Exception:  # noqa: BLE001 - an extra, never a reason to fail the completion
            found = []
        for match in found:
            name = match.rpartition(".")[2]
            if name not in seen and name.startswith(stem):
                seen.add(name)
                out.append(HelperCompletion(name, name, name[len(stem):], None, ""))
        return out

    def jedi_matches(cursor_column, cursor_line, text):
        activity["last"] = time.monotonic()
        if not own_warm.is_set() and not helper.closed:
            before_cursor = text[:cursor_to_position(text, cursor_line, cursor_column)]
            live = loaded_module_matches(before_cursor, shell.user_ns)
            if live is not None:  # the helper is not needed (nor started) for this one
                helper.loaded_answers += 1
                return iter([c for c in live if attribute_filter(before_cursor)(c)])
            matches = from_helper(cursor_column, cursor_line, text) if helper.start() else None
            if matches is not None:
                return matches
        completer.__dict__.pop("_jedi_matches", None)  # from now on: IPython's own, no wrapper
        helper.close()
        return original(cursor_column, cursor_line, text)

    completer._jedi_matches = jedi_matches
    completer._krunner_helper = helper
    threading.Thread(target=start_once_the_kernel_runs, name="krunner-helper-start", daemon=True).start()
    return helper
