# Answers the Python kernel's first completions while the kernel's own jedi is cold
# (docs/performance.md#the-first-completion).
#
# Started by kernel_launcher.py at the very start of the kernel process, with the kernel's own
# interpreter, so that it runs alongside the kernel's start-up on the other core. It:
#   1. lowers its priority to SCHED_IDLE (nice 19 where that is refused): it runs only on a core the
#      kernel and the runner leave idle, and never holds the kernel's GIL (it is another process);
#   2. warms jedi: the typeshed stubs and modules the first completions touch are parsed (or loaded
#      from jedi's on-disk pickles, CACHE below, written there for the kernel and the next kernels)
#      and inferred once. It says first whether the cache was filled before, {"cached": bool}, then
#      that it is warm: {"warm": true} (or {"warm": false, "error": ...}, and it ends);
#   3. goes back to normal priority where the system allows it (root: it now works only while the
#      kernel waits for it) and serves requests, one JSON line each on stdin, one back on stdout:
#        {"code": text before the cursor, "line": 1-based, "column": 0-based}
#        -> {"matches": [[name, name_with_symbols, complete, type, signature], ...]}
#      It ends at end of input: the kernel closed the pipe, or exited.
#
# It sees the text only, not the kernel's namespace: the kernel merges its answer with IPython's
# namespace matchers, and goes back to its own jedi once that is warm (warm_completer.py).
# Self-contained (stdlib and jedi): usage `python completion_helper.py CACHE_DIR`.
import json
import os
import signal
import sys
import time

# what the first completions of a session usually touch: a stdlib module's attributes (builtins,
# and with them what names alone need, come along)
WARM_SNIPPETS = ("import os\nos.pa",)
TYPE_BUDGET = 0.05  # s for types and signatures per answer (~50 ms each on a module's attributes)


def set_policy(policy, tids):
    for tid in tids:
        try:
            os.sched_setscheduler(tid, policy, os.sched_param(0))
        except (AttributeError, OSError):
            if policy != getattr(os, "SCHED_OTHER", 0):
                try:
                    os.setpriority(os.PRIO_PROCESS, tid, 19)
                except (AttributeError, OSError):
                    pass


def save_atomically(parso_cache):
    """parso writes its pickles in place: a reader in the kernel could load half a file."""
    import pickle

    def save(hashed_grammar, path, item, cache_path=None):
        target = parso_cache._get_hashed_path(hashed_grammar, path, cache_path=cache_path)
        tmp = f"{target}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(item, f, pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, target)

    parso_cache._save_to_file_system = save


def filled(parso_cache, cache):
    """Whether an earlier kernel filled the cache (then warming takes ~1 s, not ~2.5 s)."""
    try:
        from pathlib import Path

        return sum(1 for _ in parso_cache._get_cache_directory_path(Path(cache)).glob("*.pkl")) >= 10
    except Exception:  # noqa: BLE001
        return False


def save_with_used_names(parso_cache, cache):
    """Pickle the modules again, now with the name index that jedi builds on each module's first
    use (parso pickles a module before that): ~10% off the next kernels' warm-up."""
    from pathlib import Path

    for hashed_grammar, items in list(parso_cache.parser_cache.items()):
        for path, item in list(items.items()):
            if path is not None:
                item.node.get_used_names()
                parso_cache._save_to_file_system(hashed_grammar, path, item, cache_path=Path(cache))


def completions(jedi, code, line, column, type_budget=None):
    interpreter = jedi.Interpreter(code, [{}])
    try:  # IPython leaves completions inside a string literal to its other matchers
        first = next(c for c in interpreter._get_module().tree_node.children if hasattr(c, "value"))
        if first.value[:1] in ("'", '"'):
            return []
    except Exception:  # noqa: BLE001 - the same private API IPython uses; never fail on it
        pass
    matches = interpreter.complete(line=line, column=column)
    deadline = time.monotonic() + (TYPE_BUDGET if type_budget is None else type_budget)
    out = []
    for c in matches:
        kind, signature = "<unknown>", ""
        if time.monotonic() < deadline:
            try:
                kind = c.type
                if kind == "function":
                    signatures = c.get_signatures()
                    signature = signatures[0].to_string() if signatures else ""
            except Exception:  # noqa: BLE001
                pass
        out.append([c.name, c.name_with_symbols, c.complete, kind, signature])
    return out


def reply(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def die_with_parent():
    """Killed with the kernel, even mid-warm-up (it reads its pipe only after)."""
    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (ImportError, OSError, AttributeError):  # elsewhere: it ends when it next reads its pipe
        pass
    if os.getppid() != parent or parent == 1:  # the kernel was gone already
        sys.exit(0)


def main():
    cache = sys.argv[1] if len(sys.argv) > 1 else None
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt of the kernel's process group is not for us
    die_with_parent()
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # our own directory holds the batch sitecustomize: not for import here
    set_policy(getattr(os, "SCHED_IDLE", 5), [0])
    try:
        import jedi
        import parso.cache

        if cache:
            jedi.settings.cache_directory = cache
        save_atomically(parso.cache)
        cached = filled(parso.cache, jedi.settings.cache_directory)
        reply({"cached": cached})
        for snippet in WARM_SNIPPETS:
            lines = snippet.split("\n")
            completions(jedi, snippet, len(lines), len(lines[-1]))
        if not cached:
            save_with_used_names(parso.cache, jedi.settings.cache_directory)
    except Exception as e:  # noqa: BLE001 - the kernel then uses its own jedi
        reply({"warm": False, "error": repr(e)})
        return
    reply({"warm": True})
    # from now on it works only while the kernel waits for it: back to normal priority (where allowed)
    set_policy(getattr(os, "SCHED_OTHER", 0), [0])
    for raw in sys.stdin.buffer:
        try:
            request = json.loads(raw)
            reply({"matches": completions(jedi, request["code"], request["line"], request["column"])})
        except Exception as e:  # noqa: BLE001 - one bad request is answered, not fatal
            reply({"error": repr(e)})


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
