"""Package runtime archives (one per architecture) into a Backend.AI agent krunner plugin wheel.

An agent finds a runtime only through an installed distribution that registers an entry point in
the group `backendai_krunner_v10`, named after a leaf package of the `ai.backend.krunner`
namespace, whose package data holds the archive and three small text files. See
docs/deployment.md for the contract and docs/runtime.md for the archive itself.

usage: make_wheel.py --out DIR [--public-version V] [--volume-version N] ARCHIVE...
Prints the wheel's path. Exits 2 with a one-line reason for a missing, foreign or inconsistent
archive, or an architecture the agent does not know.
"""
from __future__ import annotations

import argparse
import base64
import configparser
import hashlib
import io
import json
import lzma
import re
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

ENTRY_POINT_GROUP = "backendai_krunner_v10"
PREFIX = "/opt/backend.ai"
ARCHES = ("x86_64", "aarch64")                       # what the agent's get_arch_name() returns
PLATFORM_TAGS = {"x86_64": ("manylinux2014_x86_64", "musllinux_1_1_x86_64"),
                 "aarch64": ("manylinux2014_aarch64", "musllinux_1_1_aarch64")}
OFFICIAL_VOLUME_VERSION = 14                           # backend.ai-krunner-static-gnu 4.4.0's
MIN_VOLUME_VERSION = 1000                              # far above the official line, see below
AGENT_PIN = "4.4.0"                # backend.ai-agent 26.9.6 requires backend.ai-krunner-static-gnu==4.4.0
REPO = Path(__file__).resolve().parents[2]
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Flavour:
    key: str            # the distro key the agent matches (versions.txt)
    package: str        # leaf package = entry point name
    distribution: str
    summary: str


FLAVOURS = {
    "static-gnu": Flavour("static-gnu", "static_gnu", "backend.ai-krunner-static-gnu",
                          "krunner-bridge's kernel runner and its runtime for glibc images (Backend.AI agent plugin)"),
    "static-musl": Flavour("static-musl", "static_musl", "krunner-bridge-runtime-static-musl",
                           "krunner-bridge's kernel runner and its runtime for Alpine/musl images (Backend.AI agent plugin)"),
}


class WheelError(Exception):
    """A problem with the input archives: printed as one line, exit status 2."""


@dataclass(frozen=True)
class Archive:
    path: Path
    flavour: str
    arch: str
    python: str         # X.Y
    label: str          # .krunner-version


def _member_names(tf: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    return {m.name.removeprefix("./").rstrip("/"): m for m in tf.getmembers()}


def inspect_archive(path: Path) -> Archive:
    """Read the build record and check the layout the agent relies on."""
    if not path.is_file():
        raise WheelError(f"{path}: no such archive")
    if not path.name.endswith(".tar.xz"):
        raise WheelError(f"{path}: not a .tar.xz runtime archive (build one with builders/build.sh)")
    try:
        with tarfile.open(path, "r:xz") as tf:
            members = _member_names(tf)
            info_member = members.get(".krunner-env.json")
            if info_member is None:
                raise WheelError(f"{path}: no .krunner-env.json at its root: not a runtime archive of builders/build.sh")
            info = json.load(tf.extractfile(info_member))  # type: ignore[arg-type]
    except (tarfile.TarError, lzma.LZMAError, EOFError, OSError) as e:
        raise WheelError(f"{path}: not a readable tar.xz archive ({e})") from None
    except json.JSONDecodeError as e:
        raise WheelError(f"{path}: .krunner-env.json is not JSON ({e})") from None
    flavour, arch = info.get("flavour"), info.get("arch")
    if flavour not in FLAVOURS:
        raise WheelError(f"{path}: unknown flavour {flavour!r} (known: {', '.join(FLAVOURS)})")
    if arch not in ARCHES:
        raise WheelError(f"{path}: unsupported arch {arch!r}: the agent only knows {', '.join(ARCHES)}")
    if info.get("prefix") != PREFIX:
        raise WheelError(f"{path}: built for prefix {info.get('prefix')!r}; the agent mounts runtimes at {PREFIX}")
    python = ".".join(str(info.get("python", "")).split(".")[:2])
    if not re.fullmatch(r"3\.\d+", python):
        raise WheelError(f"{path}: no Python version in .krunner-env.json")
    site = f"lib/python{python}/site-packages/ai/backend"
    problems = []
    for mount_point in ("kernel", "helpers"):
        name = f"{site}/{mount_point}"
        m = members.get(name)
        if m is None or not m.isdir():
            problems.append(f"the agent's mount point {name}/ is missing")
        elif any(n.startswith(name + "/") for n in members):
            problems.append(f"the agent's mount point {name}/ is not empty")
    if "bin/python" not in members:
        problems.append("bin/python is missing (the agent runs /opt/backend.ai/bin/python)")
    not_readable = [n for n, m in members.items() if n and not (m.mode & 0o004)]
    if not_readable:
        problems.append(f"{len(not_readable)} entries are not world-readable, e.g. {not_readable[0]}")
    if problems:
        raise WheelError(f"{path}: not an agent-ready runtime: " + "; ".join(problems))
    label = str(info.get("label", "")).strip()
    return Archive(path, flavour, arch, python, label)


def volume_version(archives: list[Archive], override: int | None) -> int:
    """The integer in the agent's volume name `backendai-krunner.v<N>.<arch>.<key>`.

    The docker backend only checks that the volume exists: a number another runtime already used
    would silently run that runtime, so ours stay >= MIN_VOLUME_VERSION (the official line is at 14)."""
    if override is not None:
        n = override
    else:
        labels = {a.label for a in archives}
        if len(labels) != 1:
            raise WheelError(f"archives with different labels {sorted(labels)}: pass --volume-version")
        (label,) = labels
        if not label.isdigit():
            raise WheelError(f"archive label {label!r} is not an integer: pass --volume-version N (N >= {MIN_VOLUME_VERSION})")
        n = int(label)
    if n < MIN_VOLUME_VERSION:
        raise WheelError(
            f"volume version {n} < {MIN_VOLUME_VERSION}: it could name an official runtime's volume "
            f"(static-gnu 4.4.0 uses {OFFICIAL_VOLUME_VERSION}) and the agent would run that one instead")
    return n


def runner_version() -> str:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    return cfg.get("metadata", "version", fallback="0.0.0")


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


class WheelWriter:
    """A reproducible wheel: fixed timestamps, sorted entries, RECORD written last."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zf = zipfile.ZipFile(path, "w")
        self.record: list[tuple[str, str, int]] = []

    def add_bytes(self, name: str, data: bytes, *, compress: bool = True) -> None:
        zi = zipfile.ZipInfo(name, ZIP_EPOCH)
        zi.external_attr = 0o644 << 16
        zi.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        self.zf.writestr(zi, data)
        self.record.append((name, _record_hash(data), len(data)))

    def add_file(self, name: str, src: Path) -> None:
        """Large, already compressed files: streamed, stored."""
        zi = zipfile.ZipInfo(name, ZIP_EPOCH)
        zi.external_attr = 0o644 << 16
        zi.compress_type = zipfile.ZIP_STORED
        h = hashlib.sha256()
        size = 0
        with open(src, "rb") as f, self.zf.open(zi, "w", force_zip64=True) as out:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
        digest = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
        self.record.append((name, f"sha256={digest}", size))

    def close(self, record_name: str) -> None:
        lines = [f"{n},{h},{s}" for n, h, s in self.record] + [f"{record_name},,"]
        zi = zipfile.ZipInfo(record_name, ZIP_EPOCH)
        zi.external_attr = 0o644 << 16
        zi.compress_type = zipfile.ZIP_DEFLATED
        self.zf.writestr(zi, "\n".join(lines) + "\n")
        self.zf.close()


PLUGIN_PY = '''"""Backend.AI agent krunner plugin of krunner-bridge ({key}).

The agent reads this package's data files (versions.txt, krunner-version.{key}.txt,
krunner-python.{key}.txt, krunner-env.{key}.<arch>.tar.xz); nothing needs initialising.
"""
from typing import Any, Mapping


async def init(config: Mapping[str, Any]) -> None:
    """Called once by the agent at start-up; the runtime needs no set-up."""
'''


def build_wheel(archives: list[Archive], out_dir: Path, public_version: str | None,
                volume_override: int | None) -> Path:
    flavours = {a.flavour for a in archives}
    if len(flavours) != 1:
        raise WheelError(f"one flavour per wheel; got {sorted(flavours)}")
    (flavour_name,) = flavours
    fl = FLAVOURS[flavour_name]
    arches = [a.arch for a in archives]
    if len(set(arches)) != len(arches):
        raise WheelError(f"two archives for the same arch: {sorted(arches)}")
    pythons = {a.python for a in archives}
    if len(pythons) != 1:
        raise WheelError(f"archives with different Python versions {sorted(pythons)}: the agent mounts one path per key")
    (python,) = pythons
    vol = volume_version(archives, volume_override)
    public = public_version or (AGENT_PIN if flavour_name == "static-gnu" else runner_version())
    if "+" in public or not re.fullmatch(r"\d+(\.\d+)*", public):
        raise WheelError(f"public version {public!r}: use plain release numbers like 4.4.0 (the local label is added)")
    version = f"{public}+krunnerbridge.{vol}"
    dist = re.sub(r"[-_.]+", "_", fl.distribution).lower()
    tags = [t for arch in sorted(arches) for t in PLATFORM_TAGS[arch]]
    tag = "py3-none-" + ".".join(tags)
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel_path = out_dir / f"{dist}-{version}-{tag}.whl"
    pkg_dir = f"ai/backend/krunner/{fl.package}"
    dist_info = f"{dist}-{version}.dist-info"
    tmp = wheel_path.with_suffix(".whl.part")
    w = WheelWriter(tmp)
    try:
        w.add_bytes(f"{pkg_dir}/__init__.py", f'__version__ = "{version}"\n'.encode())
        w.add_bytes(f"{pkg_dir}/plugin.py", PLUGIN_PY.format(key=fl.key).encode())
        w.add_bytes(f"{pkg_dir}/versions.txt", f"{fl.key}\n".encode())
        w.add_bytes(f"{pkg_dir}/krunner-version.{fl.key}.txt", f"{vol}\n".encode())
        w.add_bytes(f"{pkg_dir}/krunner-python.{fl.key}.txt", f"{python}\n".encode())
        for a in sorted(archives, key=lambda a: a.arch):
            w.add_file(f"{pkg_dir}/krunner-env.{fl.key}.{a.arch}.tar.xz", a.path)
        license_file = REPO / "LICENSE"
        if license_file.is_file():
            w.add_bytes(f"{dist_info}/licenses/LICENSE", license_file.read_bytes())
        w.add_bytes(f"{dist_info}/METADATA", (
            "Metadata-Version: 2.1\n"
            f"Name: {fl.distribution}\n"
            f"Version: {version}\n"
            f"Summary: {fl.summary}\n"
            "License: LGPL-3.0-or-later\n"
            "Requires-Python: >=3.9\n\n"
            f"Runtime archives: {', '.join(sorted(a.path.name for a in archives))}; Python {python}.\n"
            "See docs/deployment.md of krunner-bridge.\n").encode())
        w.add_bytes(f"{dist_info}/WHEEL", (
            "Wheel-Version: 1.0\nGenerator: krunner-bridge builders/wheel.sh\nRoot-Is-Purelib: true\n"
            + "".join(f"Tag: py3-none-{t}\n" for t in tags)).encode())
        w.add_bytes(f"{dist_info}/entry_points.txt",
                    f"[{ENTRY_POINT_GROUP}]\n{fl.package} = ai.backend.krunner.{fl.package}.plugin\n".encode())
        w.add_bytes(f"{dist_info}/top_level.txt", b"ai\n")
        w.close(f"{dist_info}/RECORD")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(wheel_path)
    return wheel_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="directory for the wheel")
    ap.add_argument("--public-version", help=f"default: {AGENT_PIN} (what backend.ai-agent pins) for static-gnu, "
                    "the runner's version for static-musl")
    ap.add_argument("--volume-version", type=int, help="default: the archives' label (builders/VERSION)")
    ap.add_argument("archives", nargs="+", type=Path, metavar="ARCHIVE")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    try:
        archives = [inspect_archive(p.resolve()) for p in args.archives]
        wheel = build_wheel(archives, args.out.resolve(), args.public_version, args.volume_version)
    except WheelError as e:
        print(f"wheel.sh: ERROR: {e}", file=sys.stderr)
        return 2
    size = wheel.stat().st_size
    print(f"wheel.sh: wrote {wheel} ({size / 1e6:.1f} MB) in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
