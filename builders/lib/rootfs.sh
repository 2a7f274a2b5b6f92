# shellcheck shell=bash
# Minimal root filesystems for the runtime test matrix, cached under $WORK/rootfs/NAME.
# Each gets a .krunner-rootfs file: "libc=glibc 2.36" / "libc=musl 1.2.3" / "libc=none".
#   debian-bookworm, debian-bullseye   debootstrap --variant=minbase (~25 s each, cached)
#   tiny-glibc                         busybox-static + glibc's own libraries and loader only
#   musl                               busybox-static + musl's loader (an Alpine-like base)
#   empty                              nothing but mount points

ROOTFS_ALL=(debian-bookworm debian-bullseye tiny-glibc musl empty)
ROOTFS_SMOKE=(tiny-glibc musl empty)
GLIBC_RUNTIME_LIBS=(libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libutil.so.1
                    libresolv.so.2 libnss_files.so.2 libnss_dns.so.2)

_rootfs_etc() {  # minimal /etc: root user, localhost (minbase has no netbase /etc/hosts)
    local r=$1
    mkdir -p "$r/etc" "$r/opt" "$r/proc" "$r/dev" "$r/tmp" "$r/root"
    [ -s "$r/etc/passwd" ] || echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
    [ -s "$r/etc/group" ] || echo 'root:x:0:' >"$r/etc/group"
    grep -qs localhost "$r/etc/hosts" || printf '127.0.0.1 localhost\n::1 localhost\n' >>"$r/etc/hosts"
}

_busybox() {
    local r=$1
    mkdir -p "$r/bin"
    cp /bin/busybox "$r/bin/busybox"
    ln -sf busybox "$r/bin/sh"
}

# glibc_version ROOT: X.Y of the glibc in ROOT (from libc's banner)
glibc_version() {
    local r=$1 f
    f=$(find "$r/lib/x86_64-linux-gnu" "$r/usr/lib/x86_64-linux-gnu" -maxdepth 1 -name 'libc.so.6' 2>/dev/null | head -n1)
    [ -n "$f" ] || return 1
    strings "$(realpath "$f")" | grep -oE 'release version [0-9]+\.[0-9]+' | grep -oE '[0-9]+\.[0-9]+$' | head -n1
}

# copy_from_root ROOT PATH DEST: copy ROOT/PATH, following symlinks *inside* ROOT (Debian's
# /lib64/ld-linux-x86-64.so.2 is an absolute link that must not resolve to the host's file).
copy_from_root() {
    local root=$1 p=$2 dest=$3 t n=0
    while [ -L "$root$p" ] && [ $n -lt 20 ]; do
        t=$(readlink "$root$p")
        case $t in /*) p=$t ;; *) p=$(dirname "$p")/$t ;; esac
        n=$((n + 1))
    done
    cp "$root$p" "$dest"
}

make_rootfs() {  # make_rootfs NAME -> prints its path
    local name=$1 r=$WORK/rootfs/$1
    if [ -f "$r/.krunner-rootfs" ]; then echo "$r"; return 0; fi
    rm -rf "$r" "$r.tmp"; mkdir -p "$r.tmp"
    case $name in
        debian-*)
            logged "debootstrap-$name" debootstrap --variant=minbase "${name#debian-}" "$r.tmp" "$(debian_mirror)" || return 1
            rm -rf "$r.tmp/var/cache/apt/archives/"*.deb "$r.tmp/var/lib/apt/lists/"*_Packages
            _rootfs_etc "$r.tmp"
            echo "libc=glibc $(glibc_version "$r.tmp")" >"$r.tmp/.krunner-rootfs" ;;
        tiny-glibc)
            # glibc from the oldest Debian rootfs we have (bullseye when it was built), else the host's
            local src="" l ma=x86_64-linux-gnu
            [ -f "$WORK/rootfs/debian-bullseye/.krunner-rootfs" ] && src=$WORK/rootfs/debian-bullseye
            mkdir -p "$r.tmp/lib/$ma" "$r.tmp/lib64"
            for l in "${GLIBC_RUNTIME_LIBS[@]}"; do
                copy_from_root "$src" "/lib/$ma/$l" "$r.tmp/lib/$ma/$l" 2>/dev/null ||
                    copy_from_root "$src" "/usr/lib/$ma/$l" "$r.tmp/lib/$ma/$l" || return 1
            done
            copy_from_root "$src" /lib64/ld-linux-x86-64.so.2 "$r.tmp/lib64/ld-linux-x86-64.so.2" || return 1
            _busybox "$r.tmp"; _rootfs_etc "$r.tmp"
            echo "libc=glibc $(glibc_version "$r.tmp")" >"$r.tmp/.krunner-rootfs" ;;
        musl)
            [ -f /lib/ld-musl-x86_64.so.1 ] || { echo "the musl rootfs needs the host's musl (apt-get install musl)" >&2; return 1; }
            mkdir -p "$r.tmp/lib"
            cp -L /lib/ld-musl-x86_64.so.1 "$r.tmp/lib/ld-musl-x86_64.so.1"
            _busybox "$r.tmp"; _rootfs_etc "$r.tmp"
            echo "libc=musl $(dpkg-query -W -f='${Version}' musl | cut -d- -f1)" >"$r.tmp/.krunner-rootfs" ;;
        empty)
            mkdir -p "$r.tmp/opt" "$r.tmp/proc" "$r.tmp/dev" "$r.tmp/tmp"
            echo "libc=none" >"$r.tmp/.krunner-rootfs" ;;
        *) echo "unknown rootfs '$name' (known: ${ROOTFS_ALL[*]})" >&2; return 1 ;;
    esac
    mv "$r.tmp" "$r"
    echo "$r"
}
