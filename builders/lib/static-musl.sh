# shellcheck shell=bash
# static-musl: CPython and its C libraries built on the host with musl-gcc, as static PIC
# archives; the runtime ships trixie's musl 1.2.5 loader as PREFIX/lib/ld-musl-x86_64.so.1 and
# the interpreter names it as PT_INTERP, so it needs nothing at all from the container.

MUSL_LIBS=(zlib bzip2 xz-utils libffi sqlite3)     # Debian source packages, built statically
DEPS_CACHE=$WORK/musl-deps

flavour_check_host() {
    need_tools musl-gcc:musl-tools patchelf:patchelf tclsh:tcl make:make gcc:gcc perl:perl \
        patch:patch xz:xz-utils unshare:util-linux objdump:binutils
}

flavour_fetch_sources() {
    local p
    declare -gA LIB_ORIG=()
    for p in "${MUSL_LIBS[@]}"; do
        LIB_ORIG[$p]=$(fetch_any "$p" 0) || return 1
    done
    say "    libs: $(for p in "${MUSL_LIBS[@]}"; do basename "${LIB_ORIG[$p]}"; done | paste -sd' ')"
    # musl >= 1.2.4 is needed at run time: wheels' grafted libgcc_s/libstdc++ use DT_RELR
    # relocations, which bookworm's musl 1.2.3 cannot load. trixie's loader runs our 1.2.3 build.
    apt_private trixie-bin "Types: deb
URIs: $(debian_mirror)
Suites: trixie
Components: main
Architectures: amd64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" || return 1
    MUSL_DEB=$(ls "$SRC_DIR"/musl_*_amd64.deb 2>/dev/null | sort -V | tail -n1 || true)
    local want; want=$(apt-cache "${APT_OPTS[@]}" policy musl | awk '/Candidate:/ {print $2}')
    if [ -z "$MUSL_DEB" ] || [[ $MUSL_DEB != *"_${want}_"* ]]; then
        (cd "$SRC_DIR" && logged musl-deb apt-get "${APT_OPTS[@]}" download "musl=$want") || return 1
        MUSL_DEB=$(ls "$SRC_DIR"/musl_*_amd64.deb | sort -V | tail -n1)
    fi
    say "    loader: $(basename "$MUSL_DEB")"
}

# The compiler wrapper: musl-gcc lacks kernel headers (added with -idirafter) and gcc answers
# --print-multiarch with the glibc triplet, which CPython's configure rejects.
make_musl_cc() {
    local k=$B/kheaders
    mkdir -p "$k"
    ln -sfn /usr/include/linux "$k/linux"
    ln -sfn /usr/include/asm-generic "$k/asm-generic"
    ln -sfn "/usr/include/$(gcc -print-multiarch)/asm" "$k/asm"
    cat >"$B/musl-cc" <<EOF
#!/bin/sh
case "\$1" in --print-multiarch|-print-multiarch) echo x86_64-linux-musl; exit 0 ;; esac
exec musl-gcc -idirafter $k "\$@"
EOF
    chmod +x "$B/musl-cc"
    MUSL_CC=$B/musl-cc
}

build_musl_libs() {  # into $1: static, position-independent archives and headers
    local D=$1 s=$B/libsrc
    local -x CC=$MUSL_CC CFLAGS="-O2 -fPIC"
    unpack "${LIB_ORIG[zlib]}" "$s/zlib"
    (cd "$s/zlib" && ./configure --static --prefix="$D" && make -j"$JOBS" libz.a && make install)
    unpack "${LIB_ORIG[bzip2]}" "$s/bzip2"
    (cd "$s/bzip2" && make -j"$JOBS" CC="$CC" CFLAGS="$CFLAGS -D_FILE_OFFSET_BITS=64" libbz2.a &&
        install -D -m644 libbz2.a "$D/lib/libbz2.a" && install -D -m644 bzlib.h "$D/include/bzlib.h")
    unpack "${LIB_ORIG[xz-utils]}" "$s/xz"
    (cd "$s/xz" && ./configure --prefix="$D" --disable-shared --enable-static --with-pic --disable-xz \
        --disable-xzdec --disable-lzmadec --disable-lzmainfo --disable-scripts --disable-doc --disable-nls &&
        make -j"$JOBS" && make install)
    unpack "${LIB_ORIG[libffi]}" "$s/libffi"
    (cd "$s/libffi" && ./configure --prefix="$D" --libdir="$D/lib" --disable-shared --enable-static --with-pic \
        --disable-docs --disable-multi-os-directory && make -j"$JOBS" && make install)
    # sqlite: generate the amalgamation (needs tclsh), compile it ourselves
    unpack "${LIB_ORIG[sqlite3]}" "$s/sqlite"
    (cd "$s/sqlite" && CC=gcc CFLAGS=-O2 ./configure --disable-tcl --disable-readline >/dev/null && make sqlite3.c &&
        $CC $CFLAGS -c sqlite3.c -o sqlite3.o -DSQLITE_ENABLE_FTS3 -DSQLITE_ENABLE_FTS3_PARENTHESIS \
            -DSQLITE_ENABLE_FTS4 -DSQLITE_ENABLE_FTS5 -DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_COLUMN_METADATA \
            -DSQLITE_ENABLE_MATH_FUNCTIONS -DSQLITE_THREADSAFE=1 -DSQLITE_OMIT_LOAD_EXTENSION &&
        ar rcs "$D/lib/libsqlite3.a" sqlite3.o && install -m644 sqlite3.h sqlite3ext.h "$D/include/")
    # OpenSSL 3.0: no-async (musl has no ucontext); its CA paths are /etc/ssl (Alpine, Debian)
    unpack "$OPENSSL_ORIG" "$s/openssl"
    (cd "$s/openssl" && ./Configure linux-x86_64 no-shared no-tests no-async no-afalgeng no-engine \
        --prefix="$D" --libdir=lib --openssldir=/etc/ssl -fPIC && make -j"$JOBS" build_libs && make install_dev)
}

flavour_build_root() {
    make_musl_cc
    local key; key=$( { for p in "${MUSL_LIBS[@]}"; do basename "${LIB_ORIG[$p]}"; done; basename "$OPENSSL_ORIG"
        declare -f build_musl_libs; musl-gcc -dumpversion; } | sha256sum | cut -c1-16)
    MUSL_DEPS=$DEPS_CACHE/$key
    if [ "$REBUILD" = 0 ] && [ -f "$MUSL_DEPS/.complete" ]; then
        say "    static libs: cached ($MUSL_DEPS)"
        return 0
    fi
    rm -rf "$MUSL_DEPS" "$B/libsrc"; mkdir -p "$MUSL_DEPS"
    logged musl-libs build_musl_libs "$MUSL_DEPS" || return 1
    touch "$MUSL_DEPS/.complete"
    rm -rf "$B/libsrc"
    say "    static libs: built into $MUSL_DEPS"
}

flavour_build_cpython() {
    local D=$MUSL_DEPS
    logged cpython at_prefix "$T" "$PREFIX" env SRC="$B/python" PREFIX="$PREFIX" JOBS="$JOBS" \
        CC="$MUSL_CC" DEPS="$D" WITH_CURSES=0 RELEASE="$RELEASE" \
        CPPFLAGS="-I$D/include" LDFLAGS="-L$D/lib" PKG_CONFIG_LIBDIR="$D/lib/pkgconfig" \
        LIBSQLITE3_CFLAGS="-I$D/include" LIBSQLITE3_LIBS="-L$D/lib -lsqlite3 -lm" \
        LIBFFI_CFLAGS="-I$D/include" LIBFFI_LIBS="-L$D/lib -lffi" \
        "$BUILDERS_DIR/lib/cpython-build.sh" || return 1
    # our own loader: trixie's musl, set as PT_INTERP (strip first: strip would undo patchelf)
    local x=$B/musl-deb
    rm -rf "$x"; dpkg-deb -x "$MUSL_DEB" "$x"
    local libc; libc=$(find "$x" -name 'libc.so' -type f | head -n1)
    [ -n "$libc" ] || { echo "no libc.so in $MUSL_DEB" >&2; return 1; }
    install -m755 "$libc" "$T/lib/ld-musl-x86_64.so.1"
    install -D -m644 "$x/usr/share/doc/musl/copyright" "$T/share/doc/musl/copyright" 2>/dev/null || true
    strip "$T/bin/python$PYV"
    patchelf --set-interpreter "$PREFIX/lib/ld-musl-x86_64.so.1" "$T/bin/python$PYV"
    say "    python: $(file -b "$T/bin/python$PYV" | cut -d, -f1-2,5)"
}

flavour_finish() { :; }   # musllinux wheels graft their own libstdc++/libgcc_s

flavour_verify_args() { echo "--flavour static-musl"; }

flavour_deps_id() { basename "$MUSL_DEPS"; }

flavour_label_extra() {
    printf '{"libc": "musl %s (own loader at %s/lib/ld-musl-x86_64.so.1)", "runs_on": "any x86_64 Linux root filesystem"}' \
        "$(basename "$MUSL_DEB" | cut -d_ -f2)" "$PREFIX"
}
