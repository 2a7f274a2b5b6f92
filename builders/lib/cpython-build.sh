#!/bin/bash
# Configure, build and install a CPython (3.11 or 3.13) whose extension modules are all builtin, so the
# interpreter needs nothing but libc at run time. Runs wherever the flavour builds: inside the
# bullseye build root (static-gnu) or on the host with musl-gcc (static-musl).
#
# Environment: SRC (patched source tree), PREFIX (must be the final prefix, already mounted),
# JOBS, CC, DEPS (our static OpenSSL etc.: include/ and lib/), STATICLIBS (optional: a directory
# holding only .a archives, searched first), WITH_CURSES (0/1), RELEASE (0/1); anything else
# configure reads (CPPFLAGS, LDFLAGS, LIBSQLITE3_LIBS, PKG_CONFIG_LIBDIR...) is inherited.
set -euo pipefail
cd "$SRC"

minor=$(sed -n 's/^#define PY_MINOR_VERSION[[:space:]]*\([0-9]*\).*/\1/p' Include/patchlevel.h)

# Modules 3.11 builds through setup.py as shared objects become builtin (3.12+ builds every
# module from Setup.stdlib, which MODULE_BUILDTYPE=static already makes builtin). Debian's static archives
# are not PIC, so a lib-dynload/*.so could not link them anyway. Never put '=' in this file:
# makesetup takes such a line for a make variable.
{
    echo '*static*'
    if [ "$minor" -lt 12 ]; then
        echo '_ctypes _ctypes/_ctypes.c _ctypes/callbacks.c _ctypes/callproc.c _ctypes/stgdict.c _ctypes/cfield.c -DHAVE_FFI_PREP_CIF_VAR -DHAVE_FFI_PREP_CLOSURE_LOC -DHAVE_FFI_CLOSURE_ALLOC -lffi -ldl'
    fi
    if [ "${WITH_CURSES:-0}" = 1 ]; then
        echo '_curses _cursesmodule.c -DHAVE_NCURSESW -D_XOPEN_SOURCE_EXTENDED -I/usr/include/ncursesw -lncursesw -ltinfo'
        echo '_curses_panel _curses_panel.c -DHAVE_NCURSESW -D_XOPEN_SOURCE_EXTENDED -I/usr/include/ncursesw -lpanelw -lncursesw -ltinfo'
    fi
    echo '*disabled*'
    # GUI, GPL (gdbm, readline), deprecated or obsolete modules the runner does not need
    printf '%s\n' _tkinter _dbm _gdbm nis readline _crypt
} >Modules/Setup.local

# Hide the third-party archives' symbols from the dynamic symbol table (-export-dynamic is
# needed for the C API, but wheels bundling their own OpenSSL/sqlite must not see ours).
# Not --exclude-libs,ALL: libpython itself is an archive here.
excl=libssl.a:libcrypto.a:libffi.a:libz.a:libbz2.a:liblzma.a:libsqlite3.a:libmpdec.a:libuuid.a:libncursesw.a:libpanelw.a:libtinfo.a
ldnodist="-Wl,--exclude-libs,$excl"
[ -n "${STATICLIBS:-}" ] && ldnodist="-L$STATICLIBS $ldnodist"

opts=(--prefix="$PREFIX" --disable-shared --disable-test-modules --with-ensurepip=no
      --without-static-libpython --with-openssl="$DEPS")
[ "${RELEASE:-0}" = 1 ] && opts+=(--enable-optimizations --with-lto)

echo "== configure ${opts[*]}"
MODULE_BUILDTYPE=static LDFLAGS_NODIST="$ldnodist" ./configure "${opts[@]}"

# The key step for 3.11: it wires the generated Setup.stdlib into makesetup only for WASM;
# appending it after our rules makes every detected module builtin. 3.12+ reads it anyway.
[ "$minor" -ge 12 ] || cat Modules/Setup.stdlib >>Modules/Setup.local

echo "== make -j$JOBS"
make -j"$JOBS"
echo "== make install"
make install COMPILEALL_OPTS=-j"$JOBS"
