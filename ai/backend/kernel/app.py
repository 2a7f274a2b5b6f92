"""The runner's configuration: a traitlets Application, like every Jupyter server.

Each option is a trait with a help string, declared once on the class that uses it: the runner's
own here, batch options on `BatchExecutor`, service options on `ServiceManager`, gateway options
on `GatewayConfig`, kernel options on `KernelHub`. This class lists them all (`classes`), maps the
short flags to them (`aliases`), and `--help-all` shows every one. Environment variables reach a
trait's default through `options.from_env`. See docs/architecture.md#where-is-option-x-declared.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from copy import deepcopy
from pathlib import Path

from traitlets import Bool, Float, HasTraits, Integer, List, TraitError, Unicode, default
from traitlets.config import Application, Config

from . import __version__
from .environment import in_agent_container
from .gateway.config import GATEWAY_ALIASES, GatewayConfig
from .options import debug_flag, from_env

# The subsystems' configurable classes, by name. Importing them costs jupyter_client and the
# services (docs/performance.md#cold-paths-runner-start-up-and-first-query), so the command line loads them only when it names
# one of their options or asks for help; otherwise they are imported after the agent sockets are
# bound, and read their options from the config (and the environment) as usual. The runner itself
# (`defer_subsystem_options`) does not load them even then: it binds its sockets first and types
# those values afterwards (`type_subsystem_options`).
SUBSYSTEM_CLASSES = {
    "KernelHub": "ai.backend.kernel.kernels",
    "BatchExecutor": "ai.backend.kernel.batch",
    "ServiceManager": "ai.backend.kernel.services.manager",
    "SpillQueue": "ai.backend.kernel.spillqueue",
}
_HELP_ARGS = frozenset({"-h", "--help", "--help-all", "--version"})


# Options that moved from RunnerApp to the class that uses them: their old long forms
# (`--RunnerApp.batch_followup_wait=...`, `c.RunnerApp.service_defs_dir`) keep working.
MOVED_OPTIONS = {
    "user_input_socket": ("BatchExecutor", "user_input_socket"),
    "legacy_batch_frames": ("BatchExecutor", "legacy_frames"),
    "batch_kill_grace": ("BatchExecutor", "kill_grace"),
    "batch_followup_wait": ("BatchExecutor", "followup_wait"),
    "batch_input_poll_interval": ("BatchExecutor", "input_poll_interval"),
    "service_defs_dir": ("ServiceManager", "defs_dir"),
    "service_launch_timeout": ("ServiceManager", "launch_timeout"),
    "intrinsic_services": ("ServiceManager", "intrinsic_services"),
    "intrinsic_bind_ip": ("ServiceManager", "bind_ip"),
    "ssh_key_dir": ("ServiceManager", "ssh_key_dir"),
    "gateway_port": ("GatewayConfig", "port"),
    "gateway_ip": ("GatewayConfig", "ip"),
    "gateway_token": ("GatewayConfig", "token"),
}


def _default_bind_ip(app: RunnerApp) -> str:
    return "*" if in_agent_container(Path(app.config_dir)) else "127.0.0.1"


class RunnerApp(Application):
    """python -m ai.backend.kernel [--debug] [options] LANG [RUNTIME_PATH]"""

    name = "krunner-bridge"
    version = __version__
    description = (
        "Serve the Backend.AI agent protocol (ZeroMQ) and Jupyter front-ends on real Jupyter kernels.\n"
        "LANG is one of the runner's languages; RUNTIME_PATH is the interpreter or toolchain that runs\n"
        "user code (default: the language's usual path, or this interpreter for Python)."
    )

    replin_port = from_env(Integer(2000, help="agent → runner PULL port").tag(config=True), "KRUNNER_REPLIN_PORT")
    replout_port = from_env(Integer(2001, help="runner → agent PUSH port").tag(config=True), "KRUNNER_REPLOUT_PORT")
    bind_ip = from_env(
        Unicode(help="address the agent sockets bind to (`*` = all interfaces); default `*` inside an agent's "
                "container (its config dir has resource.txt), 127.0.0.1 elsewhere").tag(config=True),
        "KRUNNER_BIND_IP", fallback=_default_bind_ip, shown="* in an agent's container, else 127.0.0.1")
    config_dir = from_env(
        Unicode("/home/config", help="per-kernel config dir (environ.txt, intrinsic-ports.json)").tag(config=True),
        "KRUNNER_CONFIG_DIR")
    work_dir = from_env(Unicode("/home/work", help="the runner's cwd and the children's HOME").tag(config=True),
                        "KRUNNER_WORK_DIR")
    runtime_dir = Unicode(
        help="where kernel connection files go; default: Jupyter's runtime dir [env: JUPYTER_RUNTIME_DIR]"
    ).tag(config=True)
    debug = Bool(False, help="log at DEBUG level").tag(config=True)
    kernel_name = Unicode("", help="kernelspec for query mode (default: the language's own, by exact name)").tag(config=True)
    kernel_start_timeout = Float(60.0, help="seconds to wait for the main kernel to answer").tag(config=True)
    subsystems_wait = Float(
        1.0, help="seconds batch and the services wait for the main kernel to be ready before they start "
        "anyway (an op that needs them starts them at once)").tag(config=True)
    complete_timeout = Float(5.0, help="seconds to wait for completions before answering []").tag(config=True)
    shutdown_timeout = Float(4.0, help="upper bound in seconds for the whole shutdown").tag(config=True)
    send_timeout = Float(0.5, help="seconds a final frame may wait for the agent at shutdown").tag(config=True)
    extra_kernel_env = List(Unicode(), help="extra NAME=VALUE pairs for the main kernel").tag(config=True)
    preload_kernel = from_env(
        Bool(True, help="start the main kernel's interpreter (Python) before the runner's own imports; "
             "it becomes the kernel when the launch matches, else the kernel starts as usual").tag(config=True),
        "KRUNNER_PRELOAD_KERNEL")

    aliases = {
        "replin-port": "RunnerApp.replin_port",
        "replout-port": "RunnerApp.replout_port",
        "bind-ip": "RunnerApp.bind_ip",
        "config-dir": "RunnerApp.config_dir",
        "work-dir": "RunnerApp.work_dir",
        "runtime-dir": "RunnerApp.runtime_dir",
        "kernel-name": "RunnerApp.kernel_name",
        "kernel-start-timeout": "RunnerApp.kernel_start_timeout",
        "complete-timeout": "RunnerApp.complete_timeout",
        "shutdown-timeout": "RunnerApp.shutdown_timeout",
        "user-input-socket": "BatchExecutor.user_input_socket",
        "batch-kill-grace": "BatchExecutor.kill_grace",
        "service-defs-dir": "ServiceManager.defs_dir",
        "service-launch-timeout": "ServiceManager.launch_timeout",
        "intrinsic-services": "ServiceManager.intrinsic_services",
        "intrinsic-bind-ip": "ServiceManager.bind_ip",
        "ssh-key-dir": "ServiceManager.ssh_key_dir",
        "output-spool-dir": "SpillQueue.spool_dir",
        **GATEWAY_ALIASES,
        "log-level": "Application.log_level",
    }
    flags = {
        **debug_flag("RunnerApp"),
        "legacy-batch-frames": ({"BatchExecutor": {"legacy_frames": True}}, "original batch frame sequence"),
    }
    classes = [GatewayConfig]  # + the SUBSYSTEM_CLASSES, when `load_subsystem_classes` ran

    # Set before `initialize` by the runner's command line: subsystem options named on it keep their
    # text values until `type_subsystem_options` (after the agent sockets are bound).
    defer_subsystem_options = False
    _untyped_argv: list[str] | None = None

    def load_subsystem_classes(self, names: Sequence[str] = tuple(SUBSYSTEM_CLASSES)) -> None:
        """List these configurable classes (default: all; typed command-line values, `--help-all`)."""
        known = {cls.__name__: cls for cls in self.classes}
        known.update((name, getattr(importlib.import_module(SUBSYSTEM_CLASSES[name]), name)) for name in names)
        others = [cls for name, cls in known.items() if name not in SUBSYSTEM_CLASSES and cls is not GatewayConfig]
        loaded = [known[name] for name in SUBSYSTEM_CLASSES if name in known]
        self.classes = [*others, *loaded, GatewayConfig]  # the order of `--help-all`

    def type_subsystem_options(self, *names: str) -> None:
        """Parse the command line again with these subsystem classes (default: all) loaded, so the
        values it gave their options get their types; nothing to do when none was deferred."""
        if self._untyped_argv is None:
            return
        self.load_subsystem_classes(names or tuple(SUBSYSTEM_CLASSES))
        super().parse_command_line(self._untyped_argv)
        for cls in self.classes:  # a value that does not fit its trait stays text: say which one
            traits = cls.class_traits(config=True)
            for key, value in self.config.get(cls.__name__, {}).items():
                if key in traits:
                    try:
                        traits[key].validate(HasTraits(), value)
                    except TraitError as e:
                        raise TraitError(f"{cls.__name__}.{key}: {e}") from None
        if all(name in {cls.__name__ for cls in self.classes} for name in SUBSYSTEM_CLASSES):
            self._untyped_argv = None

    def _names_a_subsystem_option(self, argv: Sequence[str]) -> bool:
        """Does the command line name an option (or flag) of a SUBSYSTEM_CLASSES class, or ask for help?"""
        own = {name for name, target in self.aliases.items() if target.split(".")[0] in ("RunnerApp", "Application",
                                                                                          "GatewayConfig")}
        own |= {name for name in self.flags if name != "legacy-batch-frames"}
        own_traits = set(self.class_traits(config=True))
        for arg in argv:
            if arg == "--":
                break
            if not arg.startswith("-") or arg == "-":
                continue
            if arg in _HELP_ARGS:
                return True
            name = arg.lstrip("-").split("=", 1)[0]
            section, _, trait = name.partition(".")
            if trait:
                if section in ("RunnerApp", "Application") and trait in own_traits | {"log_level"}:
                    continue
                if section == "GatewayConfig":
                    continue
                return True
            if name not in own:
                return True
        return False

    def parse_command_line(self, argv: Sequence[str] | None = None) -> None:
        args = list(sys.argv[1:] if argv is None else argv)
        if self._names_a_subsystem_option(args):
            if self.defer_subsystem_options and not _HELP_ARGS.intersection(args):
                self._untyped_argv = args
            else:
                self.load_subsystem_classes()
        super().parse_command_line(args)

    def update_config(self, config: Config) -> None:
        """Apply `config`, reading the old `RunnerApp.<name>` keys of moved options as the new ones."""
        if "RunnerApp" in config and any(old in config.RunnerApp for old in MOVED_OPTIONS):
            config = deepcopy(config)
            for old, (section, trait) in MOVED_OPTIONS.items():
                if old in config.RunnerApp:
                    config[section][trait] = config.RunnerApp.pop(old)
        super().update_config(config)

    @default("runtime_dir")
    def _runtime_dir_default(self) -> str:
        from jupyter_core.paths import jupyter_runtime_dir

        return jupyter_runtime_dir()

    def agent_ports(self, intrinsic_ports: dict[str, int]) -> tuple[int, int]:
        """(replin, replout): `intrinsic-ports.json` gives them unless the command line did."""
        ports = {"replin": self.replin_port, "replout": self.replout_port}
        for key in ports:
            if key in intrinsic_ports and not self.explicitly_set(f"{key}_port"):
                ports[key] = intrinsic_ports[key]
        return ports["replin"], ports["replout"]

    def explicitly_set(self, trait: str) -> bool:
        """Was this option given on the command line or in a config file (not a default/env)?"""
        return trait in self.config.get("RunnerApp", {})

    @property
    def lang(self) -> str:
        return self.extra_args[0] if self.extra_args else ""

    @property
    def runtime_path_arg(self) -> str | None:
        return self.extra_args[1] if len(self.extra_args) > 1 else None

    @property
    def kernel_env(self) -> dict[str, str]:
        """`extra_kernel_env` as a mapping: what the main kernel gets on top of the children's env."""
        return dict(item.partition("=")[::2] for item in self.extra_kernel_env)
