"""Options are declared once (docs/architecture.md#where-is-option-x-declared), and the op table
is the one source of the agent's ops ("Where does an agent op go")."""
from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from ai.backend.kernel import protocol
from ai.backend.kernel.app import MOVED_OPTIONS, RunnerApp
from ai.backend.kernel.batch import BatchExecutor
from ai.backend.kernel.gateway.config import GatewayConfig
from ai.backend.kernel.ops import OPS, Mode
from ai.backend.kernel.runner import Runner
from ai.backend.kernel.services.manager import ServiceManager
from tests.runnerlib import REPO


def parsed(*argv: str) -> RunnerApp:
    app = RunnerApp()
    app.parse_command_line([*argv, "python"])
    return app


def test_flags_reach_the_class_that_uses_them() -> None:
    app = parsed("--batch-kill-grace", "5", "--legacy-batch-frames", "--gateway-port", "1234",
                 "--service-launch-timeout", "7", "--intrinsic-services", "sshd")
    assert app.config.BatchExecutor.kill_grace == 5.0 and app.config.BatchExecutor.legacy_frames is True
    assert GatewayConfig(parent=app).port == 1234
    assert app.config.ServiceManager.launch_timeout == 7.0
    assert app.config.ServiceManager.intrinsic_services == ["sshd"]


def test_moved_options_keep_their_old_long_form() -> None:
    app = parsed("--RunnerApp.batch_followup_wait=0.3", "--RunnerApp.gateway_token=tok",
                 "--RunnerApp.service_defs_dir=/x")
    assert "batch_followup_wait" not in app.config.RunnerApp
    assert GatewayConfig(parent=app).token == "tok"
    assert str(app.config.BatchExecutor.followup_wait) in ("0.3", "DeferredConfigString('0.3')")
    for section, trait in MOVED_OPTIONS.values():
        cls = {"BatchExecutor": BatchExecutor, "ServiceManager": ServiceManager, "GatewayConfig": GatewayConfig}[section]
        assert cls.class_traits(config=True).get(trait) is not None, (section, trait)


def test_environment_gives_defaults_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRUNNER_REPLIN_PORT", "3100")
    monkeypatch.setenv("KRUNNER_GATEWAY_TOKEN", "from-env")
    monkeypatch.setenv("KRUNNER_INTRINSIC_SERVICES", "ttyd, sshd")
    app = parsed("--replout-port", "3101")
    assert (app.replin_port, app.replout_port) == (3100, 3101)
    assert GatewayConfig(parent=app).token == "from-env"
    assert ServiceManager.intrinsic_services.default() == ["ttyd", "sshd"]
    assert parsed("--replin-port", "3200").replin_port == 3200
    monkeypatch.setenv("KRUNNER_INTRINSIC_SERVICES", "")
    assert ServiceManager.intrinsic_services.default() == []


def test_an_unreadable_environment_value_falls_back_to_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRUNNER_REPLIN_PORT", "not-a-port")
    assert parsed().replin_port == 2000


def test_help_all_lists_every_option_with_its_variable(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "ai.backend.kernel", "--help-all"], cwd=REPO,
                         capture_output=True, text=True, timeout=60).stdout
    for option in ("--BatchExecutor.kill_grace", "--ServiceManager.defs_dir", "--GatewayConfig.port",
                   "--KernelHub.restart_poll_interval", "--RunnerApp.replin_port", "--batch-kill-grace",
                   "--gateway-port", "--intrinsic-bind-ip", "--user-input-socket"):
        assert option in out, option
    for variable in ("KRUNNER_REPLIN_PORT", "KRUNNER_BIND_IP", "KRUNNER_USER_INPUT_SOCKET", "KRUNNER_SERVICE_DEFS_DIR",
                     "KRUNNER_INTRINSIC_BIND_IP", "KRUNNER_GATEWAY_TOKEN", "KRUNNER_SSH_KEY_DIR"):
        assert f"[env: {variable}]" in " ".join(out.split()), variable


def test_every_op_has_its_handler_and_only_table_ops_are_accepted() -> None:
    for name, op in OPS.items():
        handler = getattr(Runner, op.handler, None)
        assert handler is not None and inspect.iscoroutinefunction(handler), name
        assert list(inspect.signature(handler).parameters) == ["self", "request"], name
        if op.on_bad_request is not None:
            assert op.reply is not None, name
    assert protocol.decode_request([b"status", b""]).op == "status"
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_request([b"no-such-op", b""])
    # an answered op with an undecodable payload is kept (and answered); an unanswered one is dropped
    assert protocol.decode_request([b"complete", b"\xff"]).error
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_request([b"input", b"\xff"])
    assert {n for n, op in OPS.items() if op.mode is Mode.QUEUED} == {"clean", "build", "exec", "code"}
