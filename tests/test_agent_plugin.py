"""The runtime as a Backend.AI agent plugin: builders/wheel.sh, then the REAL backend.ai-agent
(installed from PyPI into a Python 3.13 venv next to our wheels) discovers, init()s, extracts and
matches it.

The wheels are built from small archives this test makes (the layout of builders/build.sh's,
without the 100 MB interpreter) so the test runs in seconds after the venv exists; set
KRUNNER_RUNTIME_ARCHIVES to real archives (space-separated paths, one per flavour) to use those.
The agent-layout stage of builders/test.sh runs a real runtime; see docs/runtime.md.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from tests.agentplugin import FAKE_DOCKER, agent_venv, find_python313, small_archive

REPO = Path(__file__).resolve().parent.parent
WHEEL_SH = REPO / "builders/wheel.sh"
MAX_WHEEL_BYTES = 35 * 1024 * 1024
GNU_DISTROS = ("ubuntu22.04", "debian12", "centos7.6")
MUSL_DISTROS = ("alpine3.17",)


def wheel_sh(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(WHEEL_SH), *map(str, args)], capture_output=True, text=True, timeout=300)


def archives(tmp: Path) -> dict[str, Path]:
    env = os.environ.get("KRUNNER_RUNTIME_ARCHIVES", "").split()
    if env:
        return {("static-musl" if "static-musl" in p else "static-gnu"): Path(p) for p in env}
    return {f: small_archive(tmp / f"krunner-env.{f}.x86_64.tar.xz", f) for f in ("static-gnu", "static-musl")}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("wheels")
    out = {}
    for flavour, archive in archives(tmp).items():
        t0 = time.monotonic()
        res = wheel_sh("--out", tmp / "dist", archive)
        assert res.returncode == 0, res.stderr
        out[flavour] = Path(res.stdout.strip())
        assert time.monotonic() - t0 < 60, "packaging an existing archive must take seconds"
    return out


# --- the wheel itself --------------------------------------------------------------------------
def test_static_gnu_wheel_has_the_agents_contract(wheels: dict[str, Path]) -> None:
    whl = wheels["static-gnu"]
    assert whl.name.startswith("backend.ai_krunner_static_gnu-4.4.0+krunnerbridge.8001-py3-none-") or \
        whl.name.startswith("backend_ai_krunner_static_gnu-4.4.0+krunnerbridge.8001-py3-none-")
    assert whl.stat().st_size <= MAX_WHEEL_BYTES
    with zipfile.ZipFile(whl) as zf:
        names = set(zf.namelist())
        pkg = "ai/backend/krunner/static_gnu/"
        assert {pkg + n for n in ("__init__.py", "plugin.py", "versions.txt", "krunner-version.static-gnu.txt",
                                  "krunner-python.static-gnu.txt", "krunner-env.static-gnu.x86_64.tar.xz")} <= names
        # ai, ai.backend and ai.backend.krunner stay namespace packages
        assert not {"ai/__init__.py", "ai/backend/__init__.py", "ai/backend/krunner/__init__.py"} & names
        assert zf.read(pkg + "versions.txt").decode().split() == ["static-gnu"]
        vol = int(zf.read(pkg + "krunner-version.static-gnu.txt"))
        assert vol != 14 and vol >= 1000
        assert zf.read(pkg + "krunner-python.static-gnu.txt").decode().strip() == "3.13"
        ep = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert zf.read(ep).decode().split("\n")[:2] == [
            "[backendai_krunner_v10]", "static_gnu = ai.backend.krunner.static_gnu.plugin"]
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        assert "Name: backend.ai-krunner-static-gnu\n" in meta
        assert "Version: 4.4.0+krunnerbridge.8001\n" in meta
        assert zf.testzip() is None


def test_static_musl_wheel_is_our_own_distribution(wheels: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheels["static-musl"]) as zf:
        names = set(zf.namelist())
        pkg = "ai/backend/krunner/static_musl/"
        assert pkg + "krunner-env.static-musl.x86_64.tar.xz" in names
        assert zf.read(pkg + "versions.txt").decode().split() == ["static-musl"]
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        assert "Name: krunner-bridge-runtime-static-musl\n" in meta
        ep = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
        assert "static_musl = ai.backend.krunner.static_musl.plugin" in ep


def test_wheel_is_reproducible(tmp_path: Path) -> None:
    a = small_archive(tmp_path / "krunner-env.static-gnu.x86_64.tar.xz", "static-gnu")
    w1 = Path(wheel_sh("--out", tmp_path / "1", a).stdout.strip())
    w2 = Path(wheel_sh("--out", tmp_path / "2", a).stdout.strip())
    assert w1.read_bytes() == w2.read_bytes()


@pytest.mark.parametrize("case, expected", [
    ("missing", "no such archive"),
    ("not-xz", "not a .tar.xz runtime archive"),
    ("foreign", "no .krunner-env.json"),
    ("arch", "unsupported arch 'riscv64'"),
    ("no-mount-points", "mount point lib/python3.13/site-packages/ai/backend/kernel/ is missing"),
    ("full-mount-point", "mount point lib/python3.13/site-packages/ai/backend/kernel/ is not empty"),
    ("official-volume", "volume version 14 < 1000"),
])
def test_wheel_sh_rejects_bad_archives_clearly(tmp_path: Path, case: str, expected: str) -> None:
    p = tmp_path / "krunner-env.static-gnu.x86_64.tar.xz"
    if case == "not-xz":
        p = tmp_path / "runtime.zip"
        p.write_bytes(b"PK")
    elif case == "foreign":
        with tarfile.open(p, "w:xz") as tf:
            tf.add(REPO / "setup.cfg", arcname="./setup.cfg")
    elif case == "arch":
        small_archive(p, "static-gnu", arch="riscv64")
    elif case == "no-mount-points":
        small_archive(p, "static-gnu", mount_points=False)
    elif case == "full-mount-point":
        small_archive(p, "static-gnu", extra={"lib/python3.13/site-packages/ai/backend/kernel/__init__.py": b""})
    elif case == "official-volume":
        small_archive(p, "static-gnu", label="14")
    res = wheel_sh("--out", tmp_path / "dist", p)
    assert res.returncode == 2, res
    assert expected in res.stderr
    assert res.stderr.startswith("wheel.sh: ERROR: ")
    assert not list((tmp_path / "dist").glob("*.whl*")) if (tmp_path / "dist").exists() else True


def test_wheel_sh_rejects_mixed_inputs(tmp_path: Path) -> None:
    gnu = small_archive(tmp_path / "a.tar.xz", "static-gnu")
    musl = small_archive(tmp_path / "b.tar.xz", "static-musl")
    res = wheel_sh("--out", tmp_path, gnu, musl)
    assert res.returncode == 2 and "one flavour per wheel" in res.stderr
    res = wheel_sh("--out", tmp_path, gnu, small_archive(tmp_path / "c.tar.xz", "static-gnu"))
    assert res.returncode == 2 and "two archives for the same arch" in res.stderr


def test_two_arches_in_one_wheel(tmp_path: Path) -> None:
    x86 = small_archive(tmp_path / "x.tar.xz", "static-gnu")
    arm = small_archive(tmp_path / "a.tar.xz", "static-gnu", arch="aarch64")
    res = wheel_sh("--out", tmp_path, x86, arm)
    assert res.returncode == 0, res.stderr
    whl = Path(res.stdout.strip())
    assert "manylinux2014_aarch64" in whl.name and "manylinux2014_x86_64" in whl.name
    with zipfile.ZipFile(whl) as zf:
        assert {"krunner-env.static-gnu.x86_64.tar.xz", "krunner-env.static-gnu.aarch64.tar.xz"} <= {
            n.rsplit("/", 1)[-1] for n in zf.namelist()}


# --- the real agent ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def venv(wheels: dict[str, Path]) -> Path:
    py = find_python313()
    if py is None:
        pytest.fail("Python 3.13 is needed to install backend.ai-agent (set KRUNNER_PYTHON313, put python3.13 "
                    "on PATH, or run .ci/install.d/80-builders.sh)")
    v = agent_venv(py)
    res = subprocess.run([str(v / "bin/python"), "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps",
                          *map(str, wheels.values())], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return v


@pytest.mark.timeout(1200)  # a cold venv (pip install backend.ai-agent) took 570 s on a loaded 2-core machine
def test_pip_check_is_clean_with_the_agent(venv: Path) -> None:
    res = subprocess.run([str(venv / "bin/python"), "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    listed = subprocess.run([str(venv / "bin/python"), "-m", "pip", "list", "--format=json"],
                            capture_output=True, text=True, timeout=120, check=True).stdout
    versions = {d["name"].lower(): d["version"] for d in json.loads(listed)}
    assert versions["backend.ai-agent"] == "26.9.6"
    assert versions["backend.ai-krunner-static-gnu"] == "4.4.0+krunnerbridge.8001"
    assert versions["krunner-bridge-runtime-static-musl"].endswith("+krunnerbridge.8001")


@pytest.mark.timeout(1200)
def test_the_agent_discovers_extracts_and_matches_our_runtimes(venv: Path, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "docker").write_text(FAKE_DOCKER)
    (bindir / "docker").chmod(0o755)
    volumes = tmp_path / "volumes"
    volumes.mkdir()
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "FAKE_DOCKER_VOLUMES": str(volumes)}
    env.pop("PYTHONPATH", None)
    res = subprocess.run(
        [str(venv / "bin/python"), str(REPO / "tests/agent_plugin_probe.py"), str(volumes), *GNU_DISTROS, *MUSL_DISTROS],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    eps = {ep["name"]: ep for ep in report["entry_points"]}
    assert eps["static_gnu"]["dist"] == "backend.ai-krunner-static-gnu"
    assert eps["static_gnu"]["version"] == "4.4.0+krunnerbridge.8001"
    assert eps["static_musl"]["value"] == "ai.backend.krunner.static_musl.plugin"
    assert report["volumes"] == {
        "static-gnu": "backendai-krunner.v8001.x86_64.static-gnu",
        "static-musl": "backendai-krunner.v8001.x86_64.static-musl",
    }
    for distro in GNU_DISTROS + MUSL_DISTROS:
        m = report["matches"][distro]
        key = "static-musl" if distro in MUSL_DISTROS else "static-gnu"
        assert m["key"] == key, (distro, m)
        assert m["volume"] == report["volumes"][key]
        assert m["python"] == "3.13"          # the agent mounts its runner at lib/python3.13/...
        assert m["volume_version_file"] == "8001"  # written by the agent's extractor script
        assert m["has_bin_python"] and m["mount_points"], m
    assert report["matches"]["alpine3.17"]["libc"] == "musl"
    assert report["matches"]["debian12"]["libc"] == "glibc"


# --- the runtime's start-up hook (builders/lib/runtime_site.py) ---------------------------------
@pytest.fixture
def hooked_venv(tmp_path: Path) -> Path:
    """A venv laid out like the runtime: our package in lib/krunner-bridge, the hook in
    site-packages, and a stand-in for the agent's package at the mount point."""
    v = tmp_path / "rt"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(v)], check=True, timeout=120)
    site = Path(subprocess.run([str(v / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_krunner_bridge_site.py").write_text((REPO / "builders/lib/runtime_site.py").read_text())
    (site / "krunner-bridge.pth").write_text("import _krunner_bridge_site\n")
    ours = v / "lib/krunner-bridge/ai/backend/kernel"
    ours.mkdir(parents=True)
    (ours / "__init__.py").write_text("WHO = 'bridge'\n")
    (ours / "__main__.py").write_text("print('runner bridge')\n")
    (site / "ai/backend/helpers").mkdir(parents=True)
    (site / "ai/backend/kernel").mkdir(parents=True)
    return v


def _mount_agent_package(v: Path) -> None:
    (site,) = v.glob("lib/python3*/site-packages")
    (site / "ai/backend/kernel/__init__.py").write_text("WHO = 'agent'\n")
    (site / "ai/backend/kernel/__main__.py").write_text("print('runner agent')\n")


def _run(v: Path, *args: str, runner: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(v)}
    if runner is not None:
        env["KRUNNER_RUNNER"] = runner
    return subprocess.run([str(v / "bin/python"), "-s", *args], capture_output=True, text=True, env=env, timeout=60,
                          cwd=v)  # not the repository: "-c" and "-m" put the cwd first on sys.path


def test_hook_puts_our_runner_ahead_of_the_agents_mount(hooked_venv: Path) -> None:
    _mount_agent_package(hooked_venv)
    res = _run(hooked_venv, "-c", "import ai.backend.kernel as k, sys; print(k.WHO, sys.dont_write_bytecode)")
    assert res.stdout.split() == ["bridge", "True"], res.stderr
    assert _run(hooked_venv, "-m", "ai.backend.kernel").stdout.strip() == "runner bridge"


def test_krunner_runner_agent_hands_over_to_the_mounted_runner(hooked_venv: Path) -> None:
    _mount_agent_package(hooked_venv)
    res = _run(hooked_venv, "-c", "import ai.backend.kernel as k; print(k.WHO)", runner="agent")
    assert res.stdout.strip() == "agent", res.stderr
    assert _run(hooked_venv, "-m", "ai.backend.kernel", runner="agent").stdout.strip() == "runner agent"


def test_krunner_runner_agent_without_the_mount_is_a_clear_error(hooked_venv: Path) -> None:
    res = _run(hooked_venv, "-m", "ai.backend.kernel", "python", runner="agent")
    assert res.returncode == 78
    assert "KRUNNER_RUNNER=agent asks for the agent-mounted runner, but nothing is mounted at" in res.stderr
    # other programs on the runtime's interpreter are not affected
    assert _run(hooked_venv, "-c", "print('fine')", runner="agent").stdout.strip() == "fine"


def test_unknown_krunner_runner_value_is_reported_and_ignored(hooked_venv: Path) -> None:
    res = _run(hooked_venv, "-c", "import ai.backend.kernel as k; print(k.WHO)", runner="official")
    assert res.stdout.strip() == "bridge"
    assert "ignoring KRUNNER_RUNNER='official'" in res.stderr


def test_hook_gives_an_argv0_without_a_path_a_real_executable(hooked_venv: Path) -> None:
    """backend.ai-kernel re-executes itself with argv[0] `bai-krunner` and PYTHONHOME=sys.prefix:
    sys.executable is then '' and every kernel launch fails. A venv cannot re-create that start
    (its prefix comes from the executable's path), so the hook's repair is called directly here;
    the agent-layout stage of builders/test.sh runs the real re-exec on the real runtime."""
    code = ("import sys, _krunner_bridge_site as hook; sys.prefix = sys.argv[1]; sys.executable = ''; "
            "hook._fix_executable(); print(sys.executable)")
    fake_prefix = hooked_venv / "prefix"
    (fake_prefix / "bin").mkdir(parents=True)
    exe = fake_prefix / "bin" / ("python%d.%d" % sys.version_info[:2])
    exe.symlink_to(sys.executable)
    res = _run(hooked_venv, "-c", code, str(fake_prefix))
    assert res.stdout.strip() == str(exe), res.stderr
