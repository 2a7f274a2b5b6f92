#!/bin/bash
# Build the self-contained Python runtime the runner runs on (mounted at /opt/backend.ai in any
# image), from Debian source packages and PyPI only. See the README (section "The runner's runtime").
set -euo pipefail
BUILDERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
source "$BUILDERS_DIR/lib/common.sh"

usage() {
    cat <<EOF
usage: builders/build.sh FLAVOR [options]

FLAVOR
  static-gnu    CPython, extension modules builtin, linked in a Debian bullseye build root:
                needs only glibc >= 2.30 at run time (Debian 11+, Ubuntu 20.04+, RHEL 9)
  static-musl   CPython on musl with its own loader as PT_INTERP: runs in any x86_64
                root filesystem (glibc of any age, Alpine, busybox, an empty one)

options
  --out DIR             where the archive goes (default: builders/out)
  --work DIR            work directory; its build roots, static deps and downloads are cached
                        between runs (default: /var/tmp/krunner-builders)
  --prefix PATH         where the runtime is mounted in containers (default: /opt/backend.ai)
  --python SPEC         CPython source: a Debian source package PKG[=VERSION] (default
                        python3.13, from trixie; python3.11 from bookworm also works: the newest
                        version whose patches download; Debian's upstream backports are applied)
                        or a path to a CPython 3.11/3.13 source tarball (no patches)
  --deps SET            agent (default: the runner, ipykernel, what the bundled kernelspecs
                        import, and what the agent-mounted runner imports), runner+ipykernel,
                        or runner; read from setup.cfg (see lib/requirements.py)
  --no-wheel            do not write the agent plugin wheel next to the archive
  --public-version V    the wheel's public version (default: see builders/wheel.sh)
  --runner-wheel FILE   install this wheel of the runner; 'build' (default) builds one from
                        this repository; 'none' leaves the runner out
  --xz-level N          xz compression level 0-9 (default 6)
  --label VERSION       volume version written to PREFIX/.krunner-version (default: builders/VERSION)
  --jobs N              parallel make jobs (default 2)
  --release             PGO + LTO (about 13 more minutes on 2 cores)
  --smoke               fast settings for CI: xz level 1
  --rebuild             ignore the cached build root / static deps
  -h, --help            this text

Run as root (unshare -m, mount, chroot, debootstrap). Output:
  OUT/krunner-env.FLAVOR.ARCH.tar.xz  (+ .sha256 and a .json build record)
  OUT/<distribution>-<version>-py3-none-<platform>.whl: the Backend.AI agent plugin wheel
  (builders/wheel.sh makes it from existing archives; docs/deployment.md installs it)
EOF
}

# ---------------------------------------------------------------- options
FLAVOUR="" OUT_DIR=$BUILDERS_DIR/out WORK=/var/tmp/krunner-builders PREFIX=/opt/backend.ai
PYTHON_SPEC=python3.13 DEP_SET=agent RUNNER_WHEEL=build WHEEL=1 PUBLIC_VERSION="" XZ_LEVEL=6 JOBS=2 RELEASE=0 REBUILD=0
LABEL=$(cat "$BUILDERS_DIR/VERSION")
while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --out) OUT_DIR=$2; shift ;;
        --work) WORK=$2; shift ;;
        --prefix) PREFIX=$2; shift ;;
        --python) PYTHON_SPEC=$2; shift ;;
        --deps) DEP_SET=$2; shift ;;
        --runner-wheel) RUNNER_WHEEL=$2; shift ;;
        --xz-level) XZ_LEVEL=$2; shift ;;
        --label) LABEL=$2; shift ;;
        --jobs) JOBS=$2; shift ;;
        --release) RELEASE=1 ;;
        --smoke) XZ_LEVEL=1 ;;
        --rebuild) REBUILD=1 ;;
        --no-wheel) WHEEL=0 ;;
        --public-version) PUBLIC_VERSION=$2; shift ;;
        static-gnu|static-musl) [ -z "$FLAVOUR" ] || die "only one FLAVOR"; FLAVOUR=$1 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
[ -n "$FLAVOUR" ] || { usage >&2; exit 2; }
case $DEP_SET in runner|runner+ipykernel|agent) ;; *) die "--deps must be agent, runner+ipykernel or runner" ;; esac
[[ $XZ_LEVEL =~ ^[0-9]$ ]] || die "--xz-level must be 0-9"
[[ $PREFIX == /* ]] || die "--prefix must be absolute"
case $RUNNER_WHEEL in build|none) ;; *) [ -f "$RUNNER_WHEEL" ] || die "no such wheel: $RUNNER_WHEEL"
    RUNNER_WHEEL=$(realpath "$RUNNER_WHEEL") ;; esac
need_root

ARCH=$(uname -m)
[ "$ARCH" = x86_64 ] || die "only x86_64 is supported so far (this is $ARCH)"
mkdir -p "$WORK" "$OUT_DIR"
WORK=$(realpath "$WORK") OUT_DIR=$(realpath "$OUT_DIR")
TAG=$FLAVOUR
SRC_DIR=$WORK/sources                 # downloads (kept)
B=$WORK/build/$FLAVOUR                # scratch build trees (recreated)
T=$WORK/tree/$FLAVOUR                 # the runtime tree, mounted at PREFIX while it is built
LOG_DIR=$WORK/logs/$FLAVOUR
ARCHIVE=$OUT_DIR/krunner-env.$FLAVOUR.$ARCH.tar.xz
export JOBS SRC_DIR LOG_DIR
rm -rf "$LOG_DIR"; mkdir -p "$LOG_DIR" "$SRC_DIR"

# shellcheck source=lib/stages.sh
source "$BUILDERS_DIR/lib/stages.sh"
# shellcheck source=/dev/null
source "$BUILDERS_DIR/lib/$FLAVOUR.sh"

say "building $FLAVOUR for $ARCH: prefix $PREFIX, deps '$DEP_SET', python '$PYTHON_SPEC', label $LABEL"
say "work dir $WORK (logs: $LOG_DIR)"
stage "check host"      flavour_check_host
stage "sources"         fetch_all_sources
stage "build root"      flavour_build_root
stage "cpython"         build_cpython
stage "packages"        install_packages
stage "finish tree"     finish_tree
stage "verify"          verify_tree
stage "archive"         make_archive
if [ "$WHEEL" = 1 ]; then
    [ "$PREFIX" = /opt/backend.ai ] || die "the agent plugin wheel needs --prefix /opt/backend.ai (or pass --no-wheel)"
    stage "wheel"       make_plugin_wheel
fi
stage_summary
say "wrote $ARCHIVE ($(human_size "$ARCHIVE"), $(du -sh --apparent-size "$T" | cut -f1) unpacked)"
