# shellcheck shell=bash
# Stages shared by both flavours. The flavour file (lib/static-*.sh) provides:
#   flavour_check_host, flavour_fetch_sources, flavour_build_root, flavour_build_cpython,
#   flavour_finish, flavour_verify_args, flavour_label_extra, flavour_deps_id
# Variables set by build.sh: FLAVOUR ARCH WORK SRC_DIR B T PREFIX LOG_DIR JOBS ...

# fetch_any PKG[=VER] WANT_DEBIAN: like fetch_source, but without a version it tries the
# versions the mirror lists, newest first, until one downloads (security uploads sometimes
# have their .dsc/.debian.tar missing from the mirror while older versions are complete).
fetch_any() {
    local spec=$1 want=$2 v out
    if [[ $spec == *=* ]]; then fetch_source "$spec" "$want"; return; fi
    for v in $(apt-cache "${APT_OPTS[@]}" showsrc "$spec" 2>/dev/null | awk '/^Version:/ {print $2}' | sort -rVu); do
        if out=$(fetch_source "$spec=$v" "$want" 2>>"$LOG_DIR/downloads.log"); then echo "$out"; return 0; fi
        echo "note: $spec=$v did not download, trying an older version" >>"$LOG_DIR/downloads.log"
    done
    echo "could not download any version of source package '$spec' (see $LOG_DIR/downloads.log)" >&2
    return 1
}

# Debian source packages of CPython come from bookworm (python3.11) or trixie (python3.13).
apt_python_sources() {
    case $1 in
        python3.11*) apt_bookworm_sources ;;
        *) apt_trixie_sources ;;
    esac
}

fetch_all_sources() {
    if [ -f "$PYTHON_SPEC" ]; then
        PY_ORIG=$(realpath "$PYTHON_SPEC") PY_DEBIAN=""
    else
        apt_python_sources "$PYTHON_SPEC" || return 1
        local got; got=$(fetch_any "$PYTHON_SPEC" 1) || return 1
        read -r PY_ORIG PY_DEBIAN <<<"$got"
    fi
    # X.Y from the tarball's name (python3.13_3.13.5.orig.tar.xz, Python-3.13.5.tar.xz)
    PYV=$(basename "$PY_ORIG" | grep -oE '3\.[0-9]+\.[0-9]+' | head -n1 | cut -d. -f1-2)
    [ -n "$PYV" ] || { echo "cannot tell the Python version from $(basename "$PY_ORIG")" >&2; return 1; }
    case $PYV in 3.11|3.13) ;; *) echo "Python $PYV: only 3.11 and 3.13 are supported" >&2; return 1 ;; esac
    say "    python $PYV: $(basename "$PY_ORIG") ${PY_DEBIAN:+ + $(basename "$PY_DEBIAN")}"
    apt_bookworm_sources || return 1
    OPENSSL_ORIG=$(fetch_any openssl 0) || return 1
    say "    openssl: $(basename "$OPENSSL_ORIG")"
    flavour_fetch_sources
}

# apply_debian_patches TREE DEBIAN_TARBALL: the upstream backports of debian/patches/series,
# in order; the Debian-only layout patches listed in debian-only-patches.txt are skipped.
apply_debian_patches() {
    local tree=$1 deb=$2 d="$B/debian" p n=0 skipped=0 skip
    skip=$(debian_only_patches)
    rm -rf "$d"; mkdir -p "$d"; tar -xf "$deb" -C "$d"
    while read -r p _; do
        case $p in ''|'#'*) continue ;; esac
        if grep -qxF "$p" "$skip"; then skipped=$((skipped + 1)); continue; fi
        patch -d "$tree" -p1 --forward --batch --no-backup-if-mismatch <"$d/debian/patches/$p" \
            >>"$LOG_DIR/patches.log" 2>&1 || { echo "patch $p does not apply (see $LOG_DIR/patches.log)" >&2; return 1; }
        n=$((n + 1))
    done <"$d/debian/patches/series"
    say "    applied $n Debian backport patches (skipped $skipped Debian-only ones)"
    PATCHES_APPLIED=$n
}

# the list of Debian-only patches for this Python version (lib/debian-only-patches.pythonX.Y.txt)
debian_only_patches() { echo "$BUILDERS_DIR/lib/debian-only-patches.python$PYV.txt"; }

# The installed interpreter (before any pip) is cached under WORK/cpython/KEY, so builds that
# differ only in their dependency set or runner wheel skip the compile.
cpython_key() {
    { echo "$FLAVOUR $PREFIX $RELEASE $(basename "$PY_ORIG") $(basename "${PY_DEBIAN:-none}") $(flavour_deps_id)"
      cat "$BUILDERS_DIR/lib/cpython-build.sh" "$(debian_only_patches)"
      declare -f flavour_build_cpython; } | sha256sum | cut -c1-16
}

build_cpython() {
    local cache; cache=$WORK/cpython/$(cpython_key)
    rm -rf "$T" "$B/python"; mkdir -p "$T" "$B"
    if [ "$REBUILD" = 0 ] && [ -f "$cache/.complete" ]; then
        cp -a "$cache/tree/." "$T/"
        PATCHES_APPLIED=$(cat "$cache/patches-applied")
        say "    cached interpreter ($cache)"
        return 0
    fi
    unpack "$PY_ORIG" "$B/python"
    PATCHES_APPLIED=0
    if [ -n "${PY_DEBIAN:-}" ]; then apply_debian_patches "$B/python" "$PY_DEBIAN" || return 1; fi
    flavour_build_cpython || return 1
    rm -rf "$cache"; mkdir -p "$cache"
    cp -a "$T" "$cache/tree"
    echo "$PATCHES_APPLIED" >"$cache/patches-applied"
    touch "$cache/.complete"
    rm -rf "$B/python"
}

runner_wheel() {  # build a wheel of this repository without touching its work tree
    local src="$B/runner-src"
    rm -rf "$src" "$B/wheels"; mkdir -p "$src" "$B/wheels"
    tar -C "$REPO_DIR" --exclude=.git --exclude=./builders --exclude=./tests --exclude=./bench \
        --exclude='*.egg-info' --exclude=./build --exclude=./dist --exclude=__pycache__ -cf - . | tar -C "$src" -xf -
    python3 -m pip wheel -q --no-deps -w "$B/wheels" "$src"
}

install_packages() {
    python3 "$BUILDERS_DIR/lib/requirements.py" "$REPO_DIR/setup.cfg" --set "$DEP_SET" >"$B/requirements.txt" || return 1
    say "    dependency set '$DEP_SET': $(paste -sd' ' "$B/requirements.txt")"
    local wheel=""
    case $RUNNER_WHEEL in
        none) ;;
        build) logged runner-wheel runner_wheel || return 1; wheel=$(ls "$B"/wheels/*.whl) ;;
        *) wheel=$RUNNER_WHEEL ;;
    esac
    cp "$B/requirements.txt" "$T/.krunner-requirements.txt.tmp"
    local py=$PREFIX/bin/python3
    logged pip at_prefix "$T" "$PREFIX" bash -euxc "
        $py -E -s -m ensurepip --default-pip
        $py -E -s -m pip install --no-warn-script-location --prefer-binary -r $PREFIX/.krunner-requirements.txt.tmp
        if [ -n '$wheel' ]; then $py -E -s -m pip install --no-warn-script-location --no-deps '$wheel'; fi
        $py -E -s -m pip list --format=freeze >$PREFIX/.krunner-freeze.tmp
    " || return 1
    rm -f "$T/.krunner-requirements.txt.tmp"
    mv "$T/.krunner-freeze.tmp" "$B/freeze.txt"
    say "    installed $(wc -l <"$B/freeze.txt") distributions${wheel:+ (runner: $(basename "$wheel"))}"
}

trim_tree() {
    local lib=$T/lib/python$PYV
    rm -rf "$lib"/{idlelib,tkinter,turtledemo,turtle.py,ensurepip,lib2to3/tests} \
           "$T"/bin/idle3* "$T"/bin/2to3* "$T/share/man"
    # tests of installed distributions (one level below site-packages); nothing imports them
    find "$lib/site-packages" -mindepth 2 -maxdepth 2 -type d \( -name tests -o -name test \) -prune -exec rm -rf {} +
    # debugpy's attach-to-PID helpers are glibc binaries injected into other processes through
    # gdb (not loaded by the runtime); they would need the image's libstdc++. Windows/macOS files too.
    rm -rf "$lib"/site-packages/debugpy/_vendored/pydevd/pydevd_attach_to_process/{*.so,*.dylib,*.dll,*.exe,*.pdb}
    find "$lib/site-packages" -type f \( -name '*.dll' -o -name '*.exe' -o -name '*.dylib' -o -name '*.pdb' \) -delete
    find "$T" -name __pycache__ -type d -prune -exec rm -rf {} +
    find "$T" -name '*.a' -path "*/config-$PYV*" -delete
}

# Bytecode compiled at the final prefix, checked by hash of nothing (unchecked-hash): the tree
# is read-only in containers and its archive has fixed mtimes, so timestamp pycs would be stale.
compile_bytecode() {
    at_prefix "$T" "$PREFIX" "$PREFIX/bin/python3" -E -s -m compileall -q -j "$JOBS" \
        --invalidation-mode unchecked-hash "$PREFIX/lib/python$PYV" "$PREFIX/lib/krunner-bridge" || \
        echo "note: some files did not compile (kept as source)"
}

write_label() {
    echo "$LABEL" >"$T/.krunner-version"
    local git_rev; git_rev=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
    # the runner wheel is built from the work tree as it is: say so when it has local changes
    if [ "$git_rev" != unknown ] && [ -n "$(git -C "$REPO_DIR" status --porcelain -- ai setup.cfg setup.py MANIFEST.in kernelspecs 2>/dev/null)" ]; then
        git_rev+="-dirty"
    fi
    at_prefix "$T" "$PREFIX" "$PREFIX/bin/python3" -I -c '
import json, platform, sqlite3, ssl, sys, zlib
info = {
    "label": sys.argv[1], "flavour": sys.argv[2], "arch": sys.argv[3], "prefix": sys.prefix,
    "python": platform.python_version(), "openssl": ssl.OPENSSL_VERSION,
    "sqlite": sqlite3.sqlite_version, "zlib": zlib.ZLIB_RUNTIME_VERSION,
    "python_source": sys.argv[4], "debian_patches_applied": int(sys.argv[5]),
    "dependency_set": sys.argv[6], "source_commit": sys.argv[7],
    "distributions": sorted(l.strip() for l in open(sys.argv[8]) if l.strip()),
}
info.update(json.loads(sys.argv[9]))
print(json.dumps(info, indent=2, sort_keys=True))
' "$LABEL" "$FLAVOUR" "$ARCH" "$(basename "$PY_ORIG")${PY_DEBIAN:+ + $(basename "$PY_DEBIAN")}" \
        "$PATCHES_APPLIED" "$DEP_SET" "$git_rev" "$B/freeze.txt" "$(flavour_label_extra)" \
        >"$B/krunner-env.json" 2>>"$LOG_DIR/label.log" || return 1
    cp "$B/krunner-env.json" "$T/.krunner-env.json"
}

# The layout a Backend.AI agent expects (docs/deployment.md): bin/python; our runner in
# lib/krunner-bridge, put ahead of site-packages by a start-up hook; the agent's mount points
# site-packages/ai/backend/{kernel,helpers} left as empty directories.
agent_layout() {
    local site=$T/lib/python$PYV/site-packages ours=$T/lib/krunner-bridge d
    [ -e "$T/bin/python" ] || ln -s "python$PYV" "$T/bin/python"
    rm -rf "$ours"; mkdir -p "$ours/ai/backend"
    for d in kernel helpers; do
        if [ -d "$site/ai/backend/$d" ]; then
            mv "$site/ai/backend/$d" "$ours/ai/backend/$d"
        fi
        mkdir -p "$site/ai/backend/$d"
    done
    # the runner's metadata goes along, so importlib.metadata finds it where the code is
    for d in "$site"/krunner_bridge-*.dist-info; do [ -d "$d" ] && mv "$d" "$ours/"; done
    [ "$RUNNER_WHEEL" != none ] || return 0    # no runner: no hook (it would only complain)
    [ -f "$ours/ai/backend/kernel/__init__.py" ] || { echo "the runner package is missing from the runtime" >&2; return 1; }
    install -m644 "$BUILDERS_DIR/lib/runtime_site.py" "$site/_krunner_bridge_site.py"
    echo "import _krunner_bridge_site" >"$site/krunner-bridge.pth"
}

finish_tree() {
    trim_tree
    agent_layout || return 1
    flavour_finish || return 1
    logged compileall compile_bytecode || return 1
    write_label || return 1
    # every console script must point at the final prefix
    local f first bad=()
    for f in "$T"/bin/*; do
        [ -f "$f" ] && [ ! -L "$f" ] && [ "$(head -c2 "$f")" = '#!' ] || continue
        first=$(head -n1 "$f")
        [[ $first == "#!$PREFIX/bin/python"* || $first == '#!/bin/sh' ]] || bad+=("${f##*/}: $first")
    done
    [ ${#bad[@]} = 0 ] || { printf 'script with a foreign shebang: %s\n' "${bad[@]}" >&2; return 1; }
    chmod -R u+rwX,go+rX,go-w "$T"
}

verify_tree() {
    # shellcheck disable=SC2046
    python3 "$BUILDERS_DIR/lib/elfcheck.py" $(flavour_verify_args) "$T" "$PREFIX" | tee "$B/elfcheck.txt" || return 1
    at_prefix "$T" "$PREFIX" "$PREFIX/bin/python3" -I -c '
import ssl, zlib, sqlite3, bz2, lzma, ctypes, hashlib, uuid, decimal, json, asyncio
import zmq, msgpack, tornado, traitlets, jupyter_client, pexpect
print("    imports ok:", ssl.OPENSSL_VERSION, "| zmq", zmq.zmq_version(), "| sqlite", sqlite3.sqlite_version)
' | tee -a "$B/elfcheck.txt" || return 1
    python3 "$BUILDERS_DIR/lib/layoutcheck.py" "$T" --python "$PYV" --runner "$([ "$RUNNER_WHEEL" = none ] && echo 0 || echo 1)" \
        | tee -a "$B/elfcheck.txt" || return 1
    # the agent's command line and environment: bin/python, -s, no LD_LIBRARY_PATH
    [ "$RUNNER_WHEEL" = none ] || at_prefix "$T" "$PREFIX" env -i -C / PATH=/usr/bin:/bin "$PREFIX/bin/python" -s -c '
import ai.backend.kernel as k, sys
assert k.__file__.startswith(sys.prefix + "/lib/krunner-bridge/"), k.__file__
assert sys.dont_write_bytecode
print("    agent command line: bin/python -s imports ai.backend.kernel from", k.__file__.rsplit("/", 4)[0])
' | tee -a "$B/elfcheck.txt" || return 1
    # the agent set: what the bundled kernelspecs and the agent-mounted runner import
    [ "$DEP_SET" != agent ] || [ "$RUNNER_WHEEL" = none ] || at_prefix "$T" "$PREFIX" env -i -C / "$PREFIX/bin/python" -s -c '
import ipykernel, bash_kernel.kernel, octave_kernel.kernel, attrs, janus, namedlist
import ai.backend.kernel.languages.shell.kernel, ai.backend.kernel.languages.octave.kernel
print("    agent set: ipykernel", ipykernel.__version__, "+ the shell/octave kernels and the agent runner imports")
' | tee -a "$B/elfcheck.txt" || return 1
}

make_archive() {
    reproducible_archive "$T" "$ARCHIVE" "$XZ_LEVEL" || return 1
    (cd "$(dirname "$ARCHIVE")" && sha256sum "$(basename "$ARCHIVE")" >"$(basename "$ARCHIVE").sha256")
    cp "$B/krunner-env.json" "${ARCHIVE%.tar.xz}.json"
    say "    $(cat "$ARCHIVE.sha256")"
}

make_plugin_wheel() {
    local args=(--out "$OUT_DIR")
    [ -z "$PUBLIC_VERSION" ] || args+=(--public-version "$PUBLIC_VERSION")
    WHEEL_PATH=$(python3 "$BUILDERS_DIR/lib/make_wheel.py" "${args[@]}" "$ARCHIVE") || return 1
    say "    $(basename "$WHEEL_PATH") ($(human_size "$WHEEL_PATH"))"
}
