"""Helpers for tests/test_agent_plugin.py: runtime archives, a Python 3.13 venv with the real
backend.ai-agent, and a stand-in `docker` for the agent's krunner extraction.

The venv is cached (like tests/agentlib caches the agent wheel) under
~REAL_USER/.cache/krunner-bridge/agent-venv-<agent version> or $KRUNNER_AGENT_VENV; installing
backend.ai-agent cold takes about a minute. Python 3.13 is found through $KRUNNER_PYTHON313, then
`python3.13` on PATH, then pyenv's versions; CI installs it in .ci/install.d/80-builders.sh.
"""
from __future__ import annotations

import fcntl
import glob
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from tests.agentlib.loader import AGENT_VERSION, _REAL_HOME

AGENT_REQ = f"backend.ai-agent=={AGENT_VERSION}"


def find_python313() -> str | None:
    """$KRUNNER_PYTHON313, pyenv's 3.13 builds, then python3.13 on PATH (a pyenv shim that has no
    3.13 selected fails the version probe and is skipped)."""
    cands = [os.environ.get("KRUNNER_PYTHON313", "")]
    cands += sorted(glob.glob(str(_REAL_HOME / ".pyenv/versions/3.13*/bin/python3.13")), reverse=True)
    cands += sorted(glob.glob("/root/.pyenv/versions/3.13*/bin/python3.13"), reverse=True)
    cands += [shutil.which("python3.13") or "", "/usr/bin/python3.13", "/usr/local/bin/python3.13"]
    for c in cands:
        if not c or not os.access(c, os.X_OK):
            continue
        probe = subprocess.run([c, "-c", "import sys, venv; print(sys.version_info[:2] == (3, 13))"],
                               capture_output=True, text=True, timeout=60)
        if probe.stdout.strip() == "True":
            return c
    return None


def agent_venv(python313: str) -> Path:
    """A venv with backend.ai-agent installed (created once, then reused)."""
    venv = Path(os.environ.get("KRUNNER_AGENT_VENV") or _REAL_HOME / f".cache/krunner-bridge/agent-venv-{AGENT_VERSION}")
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".agent-installed").is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([python313, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
            proc = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", AGENT_REQ],
                                  capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                raise RuntimeError(f"pip install {AGENT_REQ} failed:\n{proc.stdout}\n{proc.stderr}")
            (venv / ".agent-installed").write_text(AGENT_REQ + "\n")
    return venv


def small_archive(path: Path, flavour: str, *, arch: str = "x86_64", python: str = "3.13.5",
                  label: str = "8001", mount_points: bool = True, extra: dict[str, bytes] | None = None) -> Path:
    """A runtime archive with the layout builders/build.sh produces, minus the heavy parts: the
    build record, bin/python, the start-up hook and the agent's empty mount points."""
    pyv = ".".join(python.split(".")[:2])
    info = {"flavour": flavour, "arch": arch, "prefix": "/opt/backend.ai", "python": python, "label": label,
            "distributions": []}
    site = f"lib/python{pyv}/site-packages"
    files = {".krunner-env.json": json.dumps(info).encode(), ".krunner-version": f"{label}\n".encode(),
             "bin/python": b"#!/bin/sh\necho stand-in\n", f"{site}/krunner-bridge.pth": b"import _krunner_bridge_site\n",
             "lib/krunner-bridge/ai/backend/kernel/__init__.py": b""}
    files.update(extra or {})
    dirs = {"bin", "lib", f"lib/python{pyv}", site, f"{site}/ai", f"{site}/ai/backend", "lib/krunner-bridge"}
    if mount_points:
        dirs |= {f"{site}/ai/backend/kernel", f"{site}/ai/backend/helpers"}
    with tarfile.open(path, "w:xz") as tf:
        for d in sorted(dirs):
            ti = tarfile.TarInfo(f"./{d}")
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
        for name, data in sorted(files.items()):
            ti = tarfile.TarInfo(f"./{name}")
            ti.size, ti.mode = len(data), 0o755 if name.startswith("bin/") else 0o644
            tf.addfile(ti, io.BytesIO(data))
    return path


FAKE_DOCKER = r'''#!/bin/sh
# Stand-in for the `docker run` the agent uses to fill a krunner volume: it runs the agent's own
# extractor script (from backend.ai-kernel-binary) with /root/ mapped to host paths.
# Volumes live in $FAKE_DOCKER_VOLUMES/<name>.
set -eu
[ "$1" = run ] || { echo "fake docker: only 'run' is supported" >&2; exit 1; }
shift
archive="" script="" volume="" envs=""
while [ $# -gt 0 ]; do
    case $1 in
        --rm|-i) ;;
        --pids-limit) shift ;;
        -e) envs="$envs $2"; shift ;;
        -v) src=${2%%:*} dst=${2#*:}
            case $dst in
                /root/archive.tar.xz) archive=$src ;;
                /root/krunner-extractor.sh) script=$src ;;
                /root/volume) volume=$FAKE_DOCKER_VOLUMES/$src; mkdir -p "$volume" ;;
            esac; shift ;;
        *) break ;;
    esac
    shift
done
work=$(mktemp -d)
sed -e "s#/root/volume#$volume#g" -e "s#/root/archive.tar.xz#$archive#g" "$script" >"$work/extract.sh"
echo "$*" >"$FAKE_DOCKER_VOLUMES/.last-command"
env $envs sh "$work/extract.sh"
rm -rf "$work"
'''
