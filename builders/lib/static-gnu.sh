# shellcheck shell=bash
# static-gnu: CPython built inside a Debian bullseye (glibc 2.31) build root, so the result needs
# glibc >= 2.30 only; every extension module is builtin, linked against bullseye's static
# archives, and OpenSSL 3.0 is built from Debian's source in that root (bullseye ships 1.1.1).

GNU_SUITE=bullseye
GNU_ROOT_PKGS=build-essential,pkg-config,perl,libffi-dev,libbz2-dev,liblzma-dev,libsqlite3-dev,zlib1g-dev,uuid-dev,libncurses-dev
GNU_STATIC_LIBS=(ffi z bz2 lzma sqlite3 uuid ncursesw panelw tinfo)

flavour_check_host() {
    need_tools debootstrap:debootstrap patchelf:patchelf patch:patch xz:xz-utils unshare:util-linux chroot:coreutils \
        objdump:binutils ldd:libc-bin
}

flavour_fetch_sources() { :; }   # the libraries come from the build root's -dev packages

# in_root CMD...: run CMD in the build root (private mount namespace) with the runtime tree at
# PREFIX and the scratch build directory at /build.
in_root() {
    mkdir -p "$T" "$B"
    unshare -m --propagation private bash -euc '
        r=$1 tree=$2 prefix=$3 build=$4; shift 4
        mount -t proc proc "$r/proc"
        mount --rbind /dev "$r/dev"
        mkdir -p "$r$prefix" "$r/build"
        mount --bind "$tree" "$r$prefix"
        mount --bind "$build" "$r/build"
        exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
    ' krunner-in-root "$GNU_ROOT" "$T" "$PREFIX" "$B" "$@"
}

flavour_build_root() {
    GNU_ROOT=$WORK/root-$GNU_SUITE
    local key; key=$(echo "$GNU_SUITE $GNU_ROOT_PKGS $(debian_mirror)" | sha256sum | cut -c1-16)
    if [ "$REBUILD" = 1 ] || [ "$(cat "$GNU_ROOT/.krunner-root-key" 2>/dev/null)" != "$key" ]; then
        rm -rf "$GNU_ROOT" "$GNU_ROOT.tmp"
        logged debootstrap debootstrap --variant=minbase --include="$GNU_ROOT_PKGS" \
            "$GNU_SUITE" "$GNU_ROOT.tmp" "$(debian_mirror)" || return 1
        rm -rf "$GNU_ROOT.tmp/var/cache/apt/archives/"*.deb
        echo "$key" >"$GNU_ROOT.tmp/.krunner-root-key"
        mv "$GNU_ROOT.tmp" "$GNU_ROOT"
        say "    $GNU_SUITE build root: created ($(du -sh "$GNU_ROOT" | cut -f1))"
    else
        say "    $GNU_SUITE build root: cached ($GNU_ROOT)"
    fi
    # OpenSSL 3.0 from Debian's orig tarball, static, into the build root (cached there too)
    local ver; ver=$(basename "$OPENSSL_ORIG" | sed -E 's/^openssl_([^.]+\.[^.]+\.[^.]+)\.orig.*/\1/')
    # no-dso: libcrypto.a would need -ldl after it, but CPython's link lines put -ldl first
    local cfg="linux-x86_64 no-shared no-tests no-afalgeng no-engine no-dso --openssldir=/etc/ssl -fPIC"
    GNU_DEPS=/opt/krunner-deps/openssl-$ver-$(echo "$cfg" | sha256sum | cut -c1-8)
    if [ "$REBUILD" = 0 ] && [ -f "$GNU_ROOT$GNU_DEPS/.complete" ]; then
        say "    openssl $ver: cached"
        return 0
    fi
    mkdir -p "$B"; rm -rf "$GNU_ROOT$GNU_DEPS"
    unpack "$OPENSSL_ORIG" "$B/openssl"
    logged openssl in_root bash -euc "cd /build/openssl
        ./Configure $cfg --prefix=$GNU_DEPS --libdir=lib
        make -j$JOBS build_libs
        make install_dev" || return 1
    touch "$GNU_ROOT$GNU_DEPS/.complete"
    rm -rf "$B/openssl"
    say "    openssl $ver: built into the build root"
}

flavour_build_cpython() {
    # a directory holding only the .a archives, searched first: every -lfoo becomes libfoo.a
    local l ma=x86_64-linux-gnu s=$B/staticlibs
    rm -rf "$s"; mkdir -p "$s"
    for l in "${GNU_STATIC_LIBS[@]}"; do
        [ -f "$GNU_ROOT/usr/lib/$ma/lib$l.a" ] || { echo "missing lib$l.a in the build root" >&2; return 1; }
        ln -s "/usr/lib/$ma/lib$l.a" "$s/"
    done
    cp "$BUILDERS_DIR/lib/cpython-build.sh" "$B/cpython-build.sh"
    logged cpython in_root env SRC=/build/python PREFIX="$PREFIX" JOBS="$JOBS" CC=gcc DEPS="$GNU_DEPS" \
        STATICLIBS=/build/staticlibs WITH_CURSES=1 RELEASE="$RELEASE" LIBSQLITE3_LIBS="-lsqlite3 -lm -lz" \
        bash /build/cpython-build.sh || return 1
}

# manylinux wheels (pyzmq's libzmq) need the system's libstdc++/libgcc_s: ship bullseye's (they
# need only GLIBC_2.18) next to the libraries that want them; those use $ORIGIN RUNPATHs.
vendor_cxx_runtime() {
    local d f lib n=0 ma=x86_64-linux-gnu
    while IFS= read -r -d '' d; do
        for lib in libstdc++.so.6 libgcc_s.so.1; do
            [ -e "$d/$lib" ] && continue
            for f in "$d"/*.so*; do
                # not `objdump | grep -q`: with pipefail, grep's early exit can fail the pipeline
                if grep -q "NEEDED *$lib" <<<"$(objdump -p "$f" 2>/dev/null)"; then
                    cp -L "$GNU_ROOT/usr/lib/$ma/$lib" "$d/$lib" 2>/dev/null || cp -L "$GNU_ROOT/lib/$ma/$lib" "$d/$lib"
                    # so that libstdc++ finds the vendored libgcc_s next to it, too
                    patchelf --set-rpath '$ORIGIN' "$d/$lib"
                    n=$((n + 1)); break
                fi
            done
        done
    done < <(find "$T/lib/python$PYV/site-packages" -maxdepth 1 -type d -name '*.libs' -print0)
    # extension modules outside *.libs that need them (rpds-py: libgcc_s): a copy next to the
    # module, found through an $ORIGIN RUNPATH put first
    local rp
    while IFS= read -r -d '' f; do
        d=$(dirname "$f")
        for lib in libstdc++.so.6 libgcc_s.so.1; do
            grep -q "NEEDED *$lib" <<<"$(objdump -p "$f" 2>/dev/null)" || continue
            [ -e "$d/$lib" ] && continue
            cp -L "$GNU_ROOT/usr/lib/$ma/$lib" "$d/$lib" 2>/dev/null || cp -L "$GNU_ROOT/lib/$ma/$lib" "$d/$lib"
            patchelf --set-rpath '$ORIGIN' "$d/$lib"
            rp=$(patchelf --print-rpath "$f")
            case ":$rp:" in *':$ORIGIN:'*) ;; *) patchelf --set-rpath "\$ORIGIN${rp:+:$rp}" "$f" ;; esac
            n=$((n + 1))
        done
    done < <(find "$T/lib/python$PYV/site-packages" -name '*.so' -not -path '*.libs/*' -print0)
    say "    vendored $n C++ runtime libraries (into *.libs directories or next to the modules that need them)"
}

flavour_finish() {
    vendor_cxx_runtime
    strip "$T/bin/python$PYV"
}

flavour_verify_args() { echo "--flavour static-gnu"; }

flavour_deps_id() { echo "$GNU_SUITE $GNU_DEPS"; }

flavour_label_extra() {
    local floor; floor=$(objdump -T "$T/bin/python$PYV" | grep -oE 'GLIBC_[0-9.]+' | sort -Vu | tail -n1)
    printf '{"libc": "glibc (built in Debian %s)", "max_glibc_symbol": "%s", "runs_on": "x86_64 Linux with glibc >= %s"}' \
        "$GNU_SUITE" "$floor" "${floor#GLIBC_}"
}
