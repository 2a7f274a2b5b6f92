# Starts ipykernel as `python -m ipykernel_launcher` does, with a warm first completion
# (docs/performance.md#the-first-completion). Run in the kernel's own interpreter by path:
#     python -c "import runpy; runpy.run_path('<this file>', run_name='__main__')" -f CONNECTION_FILE
# Before ipykernel is imported it starts completion_helper.py (the same interpreter, idle priority),
# so the helper's jedi warm-up overlaps the kernel's own start-up on the other core; once IPython's
# completer exists, warm_completer.install() routes its jedi matcher to the helper.
#
# jedi's on-disk cache (parsed files as pickles) goes to $KRUNNER_JEDI_CACHE, by default
# <TMPDIR or /tmp>/krunner-jedi-<uid> (mode 0700), for the kernel and the helper alike: out of the
# user's work directory (HOME in a container), shared by the kernels of the same user, so that a
# restarted or later kernel loads pickles instead of parsing.
#
# KRUNNER_COMPLETION_HELPER=0 in the kernel's environment turns all of this off: the kernel is then
# started exactly as by `-m ipykernel_launcher`.
#
# Self-contained (stdlib, then ipykernel); any interpreter with ipykernel, Python >= 3.8.
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
HELPER = os.path.join(HERE, "completion_helper.py")
WARM_COMPLETER = os.path.join(HERE, "warm_completer.py")


def cache_dir():
    """A private directory for jedi's pickles, or None (jedi's default) when it is not ours."""
    path = os.environ.get("KRUNNER_JEDI_CACHE") or os.path.join(
        os.environ.get("TMPDIR") or "/tmp", "krunner-jedi-%d" % os.getuid())
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
    except OSError:
        return None
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None  # someone else's, or readable by others: the pickles hold the user's sources too
    return path


def start_helper(cache):
    import subprocess

    try:
        process = subprocess.Popen([sys.executable, HELPER] + ([cache] if cache else []),
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   close_fds=True)
    except OSError:
        return None
    try:  # at once, not only once its interpreter has started: its start-up is CPU the kernel wants
        os.sched_setscheduler(process.pid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        pass
    return process


def hook_completer(process, cache):
    """Install the router on the first IPython completer created (the shell's)."""
    import IPython.core.completer as ipc

    init = ipc.IPCompleter.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        ipc.IPCompleter.__init__ = init
        try:
            if cache:
                import jedi

                jedi.settings.cache_directory = cache
            runpy.run_path(WARM_COMPLETER)["install"](self, process)
        except Exception:  # noqa: BLE001 - without the router: IPython's own jedi, as usual
            if process.poll() is None:
                process.kill()

    ipc.IPCompleter.__init__ = __init__


def main():
    cache = cache_dir()
    process = start_helper(cache) if os.environ.get("KRUNNER_COMPLETION_HELPER", "1") != "0" else None
    if process is not None:
        try:
            hook_completer(process, cache)
        except Exception:  # noqa: BLE001 - no IPython completer to hook: no helper either
            process.kill()
    runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
