"""Start-up hook of the krunner-bridge runtime: which `ai.backend.kernel` this interpreter imports.

Installed as site-packages/_krunner_bridge_site.py and imported by krunner-bridge.pth, so it runs
at every start of PREFIX/bin/python (also with -s; not with -S or -I's isolated site).

A Backend.AI agent bind-mounts its own runner (backend.ai-kernel) over
site-packages/ai/backend/{kernel,helpers}. Our runner therefore lives in PREFIX/lib/krunner-bridge,
which this hook puts just ahead of site-packages: `ai` and `ai.backend` are namespace packages, so
`ai.backend.kernel` is found there first, and every other import is unchanged.

KRUNNER_RUNNER=agent hands control to the agent-mounted runner instead (docs/deployment.md).
The hook also turns off bytecode writing: the runtime is read-only in containers and ships
compiled bytecode; nothing may be written under PREFIX at run time.
"""
import os
import sys

ENV = "KRUNNER_RUNNER"
CHOICES = ("bridge", "agent")
EXIT_NO_AGENT_RUNNER = 78  # EX_CONFIG


def _site_packages() -> str:
    return os.path.dirname(os.path.abspath(__file__))


def _launches_runner() -> bool:
    """True when this interpreter was started as `python ... -m ai.backend.kernel ...`."""
    argv = list(getattr(sys, "orig_argv", []))
    return any(a == "-m" and argv[i + 1:i + 2] == ["ai.backend.kernel"] for i, a in enumerate(argv)) \
        or "-mai.backend.kernel" in argv


def _fix_executable() -> None:
    """A process started with an argv[0] that is no path (backend.ai-kernel re-executes itself as
    `bai-krunner`) gets an empty sys.executable, and every kernel it launches through it fails."""
    if not sys.executable:
        candidate = os.path.join(sys.prefix, "bin", "python%d.%d" % sys.version_info[:2])
        if os.access(candidate, os.X_OK):
            sys.executable = candidate


def install() -> None:
    sys.dont_write_bytecode = True
    _fix_executable()
    site_packages = _site_packages()
    ours = os.path.join(sys.prefix, "lib", "krunner-bridge")
    choice = os.environ.get(ENV, "").strip().lower() or "bridge"
    if choice not in CHOICES:
        sys.stderr.write(f"krunner-bridge: ignoring {ENV}={os.environ[ENV]!r} (expected one of {', '.join(CHOICES)}); "
                         "running krunner-bridge\n")
        choice = "bridge"
    if choice == "agent":
        mounted = os.path.join(site_packages, "ai", "backend", "kernel", "__init__.py")
        if not os.path.isfile(mounted) and _launches_runner():
            sys.stderr.write(
                f"krunner-bridge: {ENV}=agent asks for the agent-mounted runner, but nothing is mounted at "
                f"{os.path.dirname(mounted)} (the agent bind-mounts backend.ai-kernel there). "
                f"Unset {ENV} to run krunner-bridge's own runner.\n")
            sys.stderr.flush()
            os._exit(EXIT_NO_AGENT_RUNNER)
        return
    if not os.path.isdir(os.path.join(ours, "ai", "backend", "kernel")):
        sys.stderr.write(f"krunner-bridge: the runtime is incomplete: {ours}/ai/backend/kernel is missing\n")
        return
    if ours in sys.path:
        return
    try:
        at = sys.path.index(site_packages)
    except ValueError:
        at = len(sys.path)
    sys.path.insert(at, ours)


install()
