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

fetch_all_sources() {
    apt_bookworm_sources || return 1
    if [ -f "$PYTHON_SPEC" ]; then
        PY_ORIG=$(realpath "$PYTHON_SPEC") PY_DEBIAN=""
    else
        local got; got=$(fetch_any "$PYTHON_SPEC" 1) || return 1
        read -r PY_ORIG PY_DEBIAN <<<"$got"
    fi
    say "    python: $(basename "$PY_ORIG") ${PY_DEBIAN:+ + $(basename "$PY_DEBIAN")}"
    OPENSSL_ORIG=$(fetch_any openssl 0) || return 1
    say "    openssl: $(basename "$OPENSSL_ORIG")"
    flavour_fetch_sources
}

# apply_debian_patches TREE DEBIAN_TARBALL: the upstream backports of debian/patches/series,
# in order; the Debian-only layout patches listed in debian-only-patches.txt are skipped.
apply_debian_patches() {
    local tree=$1 deb=$2 d="$B/debian" p n=0 skipped=0
    rm -rf "$d"; mkdir -p "$d"; tar -xf "$deb" -C "$d"
    while read -r p _; do
        case $p in ''|'#'*) continue ;; esac
        if grep -qxF "$p" "$BUILDERS_DIR/lib/debian-only-patches.txt"; then skipped=$((skipped + 1)); continue; fi
        patch -d "$tree" -p1 --forward --batch --no-backup-if-mismatch <"$d/debian/patches/$p" \
            >>"$LOG_DIR/patches.log" 2>&1 || { echo "patch $p does not apply (see $LOG_DIR/patches.log)" >&2; return 1; }
        n=$((n + 1))
    done <"$d/debian/patches/series"
    say "    applied $n Debian backport patches (skipped $skipped Debian-only ones)"
    PATCHES_APPLIED=$n
}

# The installed interpreter (before any pip) is cached under WORK/cpython/KEY, so builds that
# differ only in their dependency set or runner wheel skip the compile.
cpython_key() {
    { echo "$FLAVOUR $PREFIX $RELEASE $(basename "$PY_ORIG") $(basename "${PY_DEBIAN:-none}") $(flavour_deps_id)"
      cat "$BUILDERS_DIR/lib/cpython-build.sh" "$BUILDERS_DIR/lib/debian-only-patches.txt"
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
    local lib=$T/lib/python3.11
    rm -rf "$lib"/{idlelib,tkinter,turtledemo,turtle.py,ensurepip,lib2to3/tests} \
           "$T"/bin/idle3* "$T"/bin/2to3* "$T/share/man"
    # tests of installed distributions (one level below site-packages); nothing imports them
    find "$lib/site-packages" -mindepth 2 -maxdepth 2 -type d \( -name tests -o -name test \) -prune -exec rm -rf {} +
    # debugpy's attach-to-PID helpers are glibc binaries injected into other processes through
    # gdb (not loaded by the runtime); they would need the image's libstdc++. Windows/macOS files too.
    rm -rf "$lib"/site-packages/debugpy/_vendored/pydevd/pydevd_attach_to_process/{*.so,*.dylib,*.dll,*.exe,*.pdb}
    find "$lib/site-packages" -type f \( -name '*.dll' -o -name '*.exe' -o -name '*.dylib' -o -name '*.pdb' \) -delete
    find "$T" -name __pycache__ -type d -prune -exec rm -rf {} +
    find "$T" -name '*.a' -path '*/config-3.11*' -delete
}

# Bytecode compiled at the final prefix, checked by hash of nothing (unchecked-hash): the tree
# is read-only in containers and its archive has fixed mtimes, so timestamp pycs would be stale.
compile_bytecode() {
    at_prefix "$T" "$PREFIX" "$PREFIX/bin/python3" -E -s -m compileall -q -j "$JOBS" \
        --invalidation-mode unchecked-hash "$PREFIX/lib/python3.11" || \
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

finish_tree() {
    trim_tree
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
}

make_archive() {
    reproducible_archive "$T" "$ARCHIVE" "$XZ_LEVEL" || return 1
    (cd "$(dirname "$ARCHIVE")" && sha256sum "$(basename "$ARCHIVE")" >"$(basename "$ARCHIVE").sha256")
    cp "$B/krunner-env.json" "${ARCHIVE%.tar.xz}.json"
    say "    $(cat "$ARCHIVE.sha256")"
}
