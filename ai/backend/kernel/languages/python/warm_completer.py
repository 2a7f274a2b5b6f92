# Warm IPython's completer inside the Python kernel, off the critical path (docs/performance.md).
#
# The first completion in a fresh ipykernel imports jedi and parso, loads parso's grammar and parses
# typeshed's stubs for builtins and the modules involved before jedi's inference even starts: about
# half a second on a busy 2-core machine, spent while the user waits for their first Tab. (The
# inference itself is redone by every completion: jedi keeps no state between requests.) Here a daemon thread does that work, beginning half a
# second after the kernel started: the kernel's start and its first query (which usually follows
# at once) keep the CPU. It runs while the kernel's main thread waits for messages and hands the
# GIL back within 1 ms when one arrives (a shorter switch interval while it runs). The first real
# completion then finds jedi, parso's grammar and the parsed stubs in memory; if it arrives while
# the warm-up runs, it waits for it (the same work) rather than doing it twice in parallel, and if
# it arrives before, the warm-up is called off.
#
# Self-contained (stdlib, IPython, jedi), so any interpreter with ipykernel can load it, in either of
# two ways:
#     ipykernel_launcher -f CONN --IPKernelApp.exec_files=<this file>    (no import path needed)
#     ipykernel_launcher -f CONN --ext=ai.backend.kernel.languages.python.warm_completer
# As an exec file it runs in the user's namespace and leaves no name behind.
#
# (Comments, not a docstring: as an exec file a docstring would replace the user's __doc__.)


# typeshed stubs parsed ahead: builtins and the modules most first completions touch
STUBS = ("builtins", "os/__init__", "posixpath", "sys/__init__", "typing", "types", "_typeshed/__init__",
         "collections/__init__", "abc", "re", "pathlib", "json/__init__", "math", "time", "random")


def _krb_start_completer_warm_up(shell, stubs=STUBS, delay=0.5, join_timeout=10.0):
    """Start the warm-up thread (it begins after `delay` s); a completion that arrives once it began
    waits for it (at most `join_timeout` s), one that arrives before calls it off."""
    import sys
    import threading

    completer = getattr(shell, "Completer", None)
    if completer is None or not getattr(completer, "use_jedi", False):
        return None
    cancelled = threading.Event()
    began = threading.Event()

    def warm_up():
        if cancelled.wait(delay):  # leave the CPU to the kernel's start and its first query
            return
        began.set()
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, 0.001))  # a message for the main thread gets the GIL sooner
        try:
            # Imports and parsing only: no inference, no live objects, no `warnings` state (which is
            # process-wide and would race with the main thread's).
            import jedi
            from jedi import settings
            from jedi.inference.gradual.typeshed import TYPESHED_PATH

            state = jedi.Interpreter("", [{}])._inference_state  # jedi's own grammar and caches
            for name in stubs:
                path = TYPESHED_PATH / "stdlib" / f"{name}.pyi"
                if cancelled.is_set():
                    break
                if path.is_file():  # the same call jedi makes for a stub: its cache entry is ours
                    state.parse(path=path, cache=True, diff_cache=settings.fast_parser,
                                cache_path=settings.cache_directory, use_latest_grammar=True)
        except Exception:  # noqa: BLE001 - a failed warm-up only means a cold first completion
            pass
        finally:
            sys.setswitchinterval(interval)

    thread = threading.Thread(target=warm_up, name="krunner-warm-completer", daemon=True)
    original = completer.completions

    def completions(text, offset):
        completer.__dict__.pop("completions", None)  # later completions: no wrapper at all
        if began.is_set():
            thread.join(join_timeout)  # the same work is under way: let it finish once
        else:
            cancelled.set()
        return original(text, offset)

    completer.completions = completions
    thread.start()
    return thread


def load_ipython_extension(shell):
    """`--ext=ai.backend.kernel.languages.python.warm_completer`."""
    _krb_start_completer_warm_up(shell)


if __name__ == "__main__" and "get_ipython" in globals():  # as an IPKernelApp.exec_files entry
    _krb_start_completer_warm_up(get_ipython())  # noqa: F821 - defined in the user namespace
    del _krb_start_completer_warm_up, load_ipython_extension, STUBS
