# Starts ipykernel as `python -m ipykernel_launcher` does, with a warm first completion
# (docs/performance.md#the-first-completion). Run in the kernel's own interpreter by path:
#     python -Xfrozen_modules=off -c "import runpy; runpy.run_path('<this file>', run_name='__main__')" -f CONNECTION_FILE
# Before ipykernel is imported it hooks IPython's completer; once the completer exists,
# warm_completer.install() routes its jedi matcher to completion_helper.py (the same interpreter, idle
# priority), which it starts between two cells once the kernel has started (KRUNNER_HELPER_START_AFTER
# s after the completer is made, default 1), or at the first completion that needs it: on 2 cores a
# helper warming jedi beside the kernel's start-up, or beside a cell, slowed them.
#
# jedi's on-disk cache (parsed files as pickles) goes to $KRUNNER_JEDI_CACHE, by default
# <TMPDIR or /tmp>/krunner-jedi-<uid> (mode 0700), for the kernel and the helper alike: out of the
# user's work directory (HOME in a container), shared by the kernels of the same user, so that a
# restarted or later kernel loads pickles instead of parsing.
#
# KRUNNER_COMPLETION_HELPER=0 in the kernel's environment turns all of this off: the kernel is then
# started exactly as by `-m ipykernel_launcher`.
#
# `--krunner-preload FD` (the runner's main kernel; docs/performance.md#the-preloaded-main-kernel):
# started by the runner before its own imports, this process imports ipykernel at once, then reads
# the real launch (argv, environment, working dir) as one JSON line from the socket FD. It answers
# "ok" and becomes that kernel, or "no: <why>" and exits when it cannot be exactly the process a
# plain launch would have made (another interpreter, an interpreter-start setting that differs, a
# module it imported that the new PYTHONPATH would shadow); the runner then launches as usual.
#
# Self-contained (stdlib, then ipykernel); any interpreter with ipykernel, Python >= 3.8.
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
HELPER = os.path.join(HERE, "completion_helper.py")
WARM_COMPLETER = os.path.join(HERE, "warm_completer.py")
EARLY_START = os.path.join(os.path.dirname(HERE), "shell", "earlystart.py")  # stdlib only, loaded by path


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


def hook_completer(cache, start_process):
    """Install the router on the first IPython completer created (the shell's); it calls
    `start_process()` for the helper's process when it wants the helper."""
    import IPython.core.completer as ipc

    init = ipc.IPCompleter.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        ipc.IPCompleter.__init__ = init
        try:
            if cache:
                import jedi

                jedi.settings.cache_directory = cache
            runpy.run_path(WARM_COMPLETER)["install"](self, start_process)
        except Exception:  # noqa: BLE001 - without the router (and the helper): IPython's own jedi, as usual
            pass

    ipc.IPCompleter.__init__ = __init__


def prepare():
    """The completer's hook (the helper starts later, warm_completer.py), before ipykernel is
    imported; IPython's terminal (with prompt_toolkit, ~0.08 s) imported only if something uses it
    (shell/earlystart.py)."""
    try:
        runpy.run_path(EARLY_START)["skip_ipython_terminal"]()
    except Exception:  # noqa: BLE001 - then `import IPython` imports it, as usual
        pass
    if os.environ.get("KRUNNER_COMPLETION_HELPER", "1") == "0":
        return
    cache = cache_dir()
    try:
        hook_completer(cache, lambda: start_helper(cache))
    except Exception:  # noqa: BLE001 - no IPython completer to hook: no helper either
        pass


def main():
    prepare()
    runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)


# ---- the preloaded main kernel -----------------------------------------------------------------

# what the interpreter read from its environment at start (or this launcher right after): must be
# the same in the real launch; PYTHONPATH (applied to sys.path at the hand-over) and the output channel's
# variables (read by the outstream extension) are the exceptions
FIXED_AT_START = ("PYTHON", "LANG", "LC_", "LD_", "HOME", "TMPDIR", "KRUNNER_", "IPYTHON", "JUPYTER", "MPLBACKEND",
                  "QT_API", "PYDEV", "DEBUGPY", "DEBUG_PYDEVD", "IDE_PROJECT_ROOTS", "LIBRARY_ROOTS")  # + debugpy's
CUSTOMIZE = ("sitecustomize", "usercustomize")


READ_AFTER_HAND_OVER = ("PYTHONPATH", "KRUNNER_OUTPUT_SOCKET", "KRUNNER_OUTPUT_SESSION")  # the runner's output channel


def _fixed(env):
    return {k: v for k, v in env.items() if k.startswith(FIXED_AT_START) and k not in READ_AFTER_HAND_OVER}


def _program(name, env):
    """The file `name` runs, looked up on the environment's PATH as exec does."""
    import shutil

    if os.sep not in name:
        name = shutil.which(name, path=env.get("PATH", os.defpath)) or name
    return os.path.realpath(name)


def _python_path(env):
    return [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]


START_ENV = dict(os.environ)  # before any import changes it (debugpy's sets PYDEVD_USE_FRAME_EVAL)


def refusal(launch):
    """Why this process cannot become the kernel `launch` describes, or None when it can."""
    argv = launch.get("argv") or []
    if "-c" not in argv[1:-1]:  # the runner has checked the interpreter's options and the code
        return "another command line"
    env = launch.get("env") or {}
    started_as = getattr(sys, "orig_argv", [sys.executable])[0]  # Python < 3.10: what it runs as
    if _program(argv[0], env) != _program(started_as, START_ENV):
        return "another interpreter (%s)" % argv[0]
    changed = sorted(set(_fixed(env).items()) ^ set(_fixed(START_ENV).items()))
    if changed:
        return "%s differs from the preloaded interpreter's" % changed[0][0]
    imported = {name.partition(".")[0] for name in sys.modules} - set(sys.builtin_module_names)
    for entry in set(_python_path(env)) - set(_python_path(START_ENV)):
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for name in names:
            module = name.partition(".")[0]
            if module in imported and not _ours(os.path.join(entry, name)):
                return "%s in the new PYTHONPATH would shadow the imported %r" % (entry, module)
    return None


def _ours(path):
    """Our batch-mode sitecustomize, which the language's start-up hook puts in the user site: in
    a kernel it only runs the next sitecustomize on the path, which the interpreter ran already."""
    try:
        with open(path, "rb") as mine, open(os.path.join(HERE, "sitecustomize.py"), "rb") as shipped:
            return mine.read() == shipped.read()
    except OSError:
        return False


def become(launch):
    """Take over the launch's environment (plus what the imports set in it, as they would have
    after a plain launch), sys.path, working dir and arguments."""
    old, new = _python_path(START_ENV), _python_path(launch["env"])
    if old != new:
        sys.path[:] = [p for p in sys.path if p not in old]
        sys.path[1:1] = new  # where PYTHONPATH goes: after the script's ('' for -c), before the stdlib
    set_by_imports = {k: v for k, v in os.environ.items() if START_ENV.get(k) != v}
    os.environ.clear()
    os.environ.update(launch["env"])
    os.environ.update(set_by_imports)
    os.chdir(launch.get("cwd") or os.getcwd())
    argv = launch["argv"]
    sys.argv[:] = ["-c", *argv[argv.index("-c", 1) + 2:]]
    for name in CUSTOMIZE:  # as `site` would have imported them from the new path
        if name not in sys.modules:
            try:
                __import__(name)
            except ImportError:
                pass


def preload(fd):
    import json
    import socket

    channel = socket.socket(fileno=fd)
    prepare()
    try:
        import ipykernel.kernelapp  # noqa: F401 - the work done ahead of the launch
        problem = None
        try:
            import ipykernel.debugger  # noqa: F401 - imported by the kernel's init (debugpy, ~0.12 s)
        except Exception:  # noqa: BLE001 - the kernel then runs without a debugger, as it would anyway
            pass
    except Exception as e:  # noqa: BLE001 - reported, and the runner launches as usual
        problem = "ipykernel does not import: %s" % e
    with channel:
        with channel.makefile("rb") as stream:
            line = stream.readline()
        launch = None
        if problem is None and not line:
            problem = "no launch"
        if problem is None:
            try:
                launch = json.loads(line)
                problem = refusal(launch)
            except (ValueError, TypeError, AttributeError) as e:
                problem = "bad launch: %s" % e
        try:
            channel.sendall(b"ok\n" if problem is None else ("no: %s\n" % problem).encode())
        except OSError:  # the runner is gone: so is the launch
            problem = problem or "runner gone"
    if problem is not None:
        sys.exit(0)
    become(launch)
    runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--krunner-preload"]:
        preload(int(sys.argv[2]))
    else:
        main()
