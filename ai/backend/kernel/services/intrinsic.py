"""Intrinsic services (docs/services.md#intrinsic-services): dropbear `sshd` with its key setup, and the `ttyd` binary.

The key setup is idempotent across runner restarts: cluster `Host` blocks and `id_cluster.pub` are
added only when not already there (the original appended them on every start).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .process import dying_with_runner
from .reaper import watch_session

log = logging.getLogger(__name__)

# Where the Backend.AI images mount their static binaries, then the usual system places.
_KERNEL_BIN_DIRS = ("/opt/kernel", "/opt/backend.ai/bin")
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def find_binary(name: str, path: str | None = None) -> str | None:
    """`name` from the kernel binary dirs, then PATH (plus the sbin dirs dropbear lives in)."""
    for d in _KERNEL_BIN_DIRS:
        candidate = Path(d, name)
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    search = ":".join(p for p in (path or os.environ.get("PATH", ""), _SYSTEM_PATH) if p)
    return shutil.which(name, path=search)


@dataclass
class Dropbear:
    """How to call the dropbear tools: one multi-call binary or three separate ones."""

    server: list[str]
    keygen: list[str]
    convert: list[str]

    @classmethod
    def find(cls, path: str | None = None) -> Dropbear | None:
        multi = find_binary("dropbearmulti", path)
        if multi:
            return cls([multi, "dropbear"], [multi, "dropbearkey"], [multi, "dropbearconvert"])
        server, keygen, convert = (find_binary(n, path) for n in ("dropbear", "dropbearkey", "dropbearconvert"))
        if server and keygen and convert:
            return cls([server], [keygen], [convert])
        return None


async def _run(argv: Sequence[str], env: Mapping[str, str]) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        *dying_with_runner(argv, env), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=dict(env), start_new_session=True,
    )
    watch_session(proc.pid)
    try:  # key generation (~0.1 s of CPU per RSA key) must not slow the main kernel's start beside it
        os.setpriority(os.PRIO_PROCESS, proc.pid, 19)
    except OSError:
        pass
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:  # the runner stops: end the key generation and reap it now
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.shield(proc.wait())
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"sshd init error ({argv[0]} exited with {proc.returncode}): {err.decode('utf-8', 'replace').strip()}")
    return out


@dataclass
class SshSetup:
    """Paths of the SSH setup: defaults are the container's, tests pass temp dirs."""

    work_dir: Path  # /home/work
    config_dir: Path  # /home/config
    key_dir: Path  # /tmp/dropbear

    @property
    def host_key(self) -> Path:
        provided = self.config_dir / "ssh" / "dropbear_rsa_host_key"
        return provided if provided.is_file() else self.key_dir / "dropbear_rsa_host_key"


def _host_block(host: str, hostname: str | None, port: int | str, identity: Path) -> str:
    lines = [f"Host {host}"]
    if hostname:
        lines.append(f"\tHostName {hostname}")
    lines += [f"\tPort {port}", "\tStrictHostKeyChecking no", f"\tIdentityFile {identity}"]
    return "\n".join(lines) + "\n"


def _existing_hosts(config_text: str) -> set[str]:
    hosts = set()
    for line in config_text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0].lower() == "host":
            hosts.add(parts[1].strip())
    return hosts


def _update_ssh_config(setup: SshSetup, env: Mapping[str, str]) -> None:
    ssh_dir = setup.work_dir / ".ssh"
    cluster_key = setup.config_dir / "ssh" / "id_cluster"
    if not cluster_key.is_file():
        return
    config_path = ssh_dir / "config"
    try:
        existing = config_path.read_text()
    except FileNotFoundError:
        existing = ""
    known = _existing_hosts(existing)
    blocks = []
    mapping_path = setup.config_dir / "ssh" / "port-mapping.json"
    if mapping_path.is_file():
        mapping = json.loads(mapping_path.read_text())
        for host, (hostname, port) in mapping.items():
            if host not in known:
                blocks.append(_host_block(host, hostname, port, cluster_key))
    else:
        replicas = env.get("BACKENDAI_CLUSTER_REPLICAS") or os.environ.get("BACKENDAI_CLUSTER_REPLICAS") or "main:1"
        for pair in replicas.split(","):
            role = pair.rsplit(":", 1)[0].strip()
            if role and f"{role}*" not in known:
                blocks.append(_host_block(f"{role}*", None, 2200, cluster_key))
    if blocks:
        with open(config_path, "a") as f:
            if existing and not existing.endswith("\n"):
                f.write("\n")
            f.write("".join("\n" + b for b in blocks))


def _add_cluster_pubkey(setup: SshSetup, auth_path: Path) -> None:
    pub_path = setup.config_dir / "ssh" / "id_cluster.pub"
    if not pub_path.is_file():
        return
    pubkey = pub_path.read_text().strip()
    existing = auth_path.read_text() if auth_path.is_file() else ""
    if pubkey and pubkey not in {line.strip() for line in existing.splitlines()}:
        with open(auth_path, "a") as f:
            if existing and not existing.endswith("\n"):
                f.write("\n")
            f.write(pubkey + "\n")
        auth_path.chmod(0o600)


async def init_sshd(setup: SshSetup, dropbear: Dropbear, env: Mapping[str, str]) -> None:
    """Keys and config for dropbear; the user key is made only when authorized_keys is missing."""
    shutil.rmtree(setup.key_dir, ignore_errors=True)
    setup.key_dir.mkdir(parents=True, mode=0o700)
    ssh_dir = setup.work_dir / ".ssh"
    auth_path = ssh_dir / "authorized_keys"
    if not auth_path.is_file():
        ssh_dir.mkdir(parents=True, exist_ok=True)
        ssh_dir.chmod(0o700)
        user_key = setup.key_dir / "id_dropbear"
        out = await _run([*dropbear.keygen, "-t", "rsa", "-s", "2048", "-f", str(user_key)], env)
        pubkey = next((line for line in out.splitlines() if line.startswith(b"ssh-")), None)
        if pubkey is None:
            raise RuntimeError("sshd init error: dropbearkey printed no public key")
        auth_path.write_bytes(pubkey + b"\n")
        auth_path.chmod(0o600)
        # The private key in OpenSSH format, for users to download.
        container_key = setup.work_dir / "id_container"
        container_key.unlink(missing_ok=True)
        await _run([*dropbear.convert, "dropbear", "openssh", str(user_key), str(container_key)], env)
    else:
        try:
            if ssh_dir.stat().st_mode & 0o077:
                ssh_dir.chmod(0o700)
            if auth_path.stat().st_mode & 0o077:
                auth_path.chmod(0o600)
        except OSError:
            log.warning("could not tighten the permissions of %s", ssh_dir)
    if not (setup.config_dir / "ssh" / "dropbear_rsa_host_key").is_file():
        await _run([*dropbear.keygen, "-t", "rsa", "-s", "2048", "-f", str(setup.host_key)], env)
    _update_ssh_config(setup, env)
    _add_cluster_pubkey(setup, auth_path)


def sshd_argv(dropbear: Dropbear, host_key: Path, ports: Sequence[int], bind_ip: str) -> list[str]:
    argv = [*dropbear.server, "-r", str(host_key), "-E", "-F", "-g", "-w", "-K", "15", "-I", "0"]
    for port in ports:
        argv += ["-p", f"{bind_ip}:{port}" if bind_ip else str(port)]
    return argv


def pick_shell() -> str:
    """First of zsh, bash, ash, else sh."""
    for shell in ("/bin/zsh", "/bin/bash", "/bin/ash"):
        if os.path.exists(shell):
            return shell
    return "/bin/sh"


def ttyd_argv(ttyd: str, port: int, bind_ip: str, tmux: str | None,
              allow_origins: Sequence[str] = ()) -> list[str]:
    """ttyd with `--check-origin` (a browser websocket must come from ttyd's own host, see
    docs/security.md). ttyd has no allow-list: with one configured the resolver prefers the terminado
    terminal, which enforces it; only where terminado is missing does ttyd run without the check,
    with a warning."""
    shell = pick_shell()
    argv = [ttyd, "-W", "-p", str(port)]
    if allow_origins:
        log.warning("ttyd cannot enforce the origin allow-list %s: it runs without --check-origin", list(allow_origins))
    else:
        argv.append("--check-origin")
    if bind_ip and bind_ip not in ("0.0.0.0", "*"):
        argv += ["-i", bind_ip]
    argv.append(shell)
    if tmux and Path(shell).name != "ash":
        # shell text: the file names in it are quoted, so a path is never read as shell syntax
        argv += ["-c", f"export SHELL={shlex.quote(shell)}; exec {shlex.quote(tmux)} -2 new-session -A -s main"]
    return argv
