# shellcheck shell=bash
# Shared helpers for builders/build.sh and builders/test.sh: progress output with per-stage
# timings, logging of noisy commands, Debian source downloads through a private apt state,
# running a command with a tree mounted at the final prefix, and the reproducible archive.

BUILDERS_DIR=${BUILDERS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
REPO_DIR=${REPO_DIR:-$(cd "$BUILDERS_DIR/.." && pwd)}

# ---------------------------------------------------------------- progress and logs
_T0=$(date +%s.%N)
STAGE_TIMES=()      # "name<TAB>seconds" of every finished stage
LOG_DIR=${LOG_DIR:-/tmp}
TAG=${TAG:-builders}

_now() { date +%s.%N; }
_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '[%s %6ss] %s\n' "$TAG" "$(_secs "$_T0" "$(_now)")" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$TAG" "$*" >&2; exit 1; }

# stage NAME FUNCTION [ARGS...]: run one build stage, print its duration, remember it.
stage() {
    local name=$1; shift
    local t0; t0=$(_now)
    say "==> $name"
    "$@" || die "stage '$name' failed (logs in $LOG_DIR)"
    local dt; dt=$(_secs "$t0" "$(_now)")
    STAGE_TIMES+=("$name	$dt")
    say "<== $name: ${dt}s"
}

stage_summary() {
    local line total; total=$(_secs "$_T0" "$(_now)")
    say "stage timings:"
    for line in "${STAGE_TIMES[@]}"; do printf '    %-22s %7ss\n' "${line%%	*}" "${line##*	}"; done
    printf '    %-22s %7ss\n' "total" "$total"
}

# logged NAME CMD...: run CMD with its output in $LOG_DIR/NAME.log; show the tail on failure.
logged() {
    local name=$1; shift
    local log="$LOG_DIR/$name.log"
    mkdir -p "$LOG_DIR"
    if ! "$@" >"$log" 2>&1; then
        printf '[%s] command failed: %s\n--- last 40 lines of %s ---\n' "$TAG" "$*" "$log" >&2
        tail -n 40 "$log" >&2
        return 1
    fi
}

need_root() { [ "$(id -u)" = 0 ] || die "run as root (needs unshare -m, mount and chroot)"; }

need_tools() {  # need_tools CMD...: fail early with the Debian package to install
    local c missing=()
    for c in "$@"; do command -v "${c%%:*}" >/dev/null 2>&1 || missing+=("${c#*:}"); done
    [ ${#missing[@]} -eq 0 ] || die "missing tools; install: apt-get install ${missing[*]}"
}

# ---------------------------------------------------------------- Debian sources
# The system's Debian mirror (deb822 or one-line sources), else deb.debian.org.
debian_mirror() {
    local m
    m=$(grep -hoE '^URIs: *http[^ ]*/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 | awk '{print $2}')
    [ -n "$m" ] || m=$(grep -hoE '^deb +http[^ ]*/debian/? ' /etc/apt/sources.list 2>/dev/null | head -n1 | awk '{print $2}')
    echo "${m:-http://deb.debian.org/debian}"
}

# apt_private NAME SOURCES_TEXT: an apt state under $WORK/apt/NAME that touches nothing of the
# system's apt configuration; sets APT_OPTS for apt-get / apt-cache.
apt_private() {
    local d="$WORK/apt/$1"
    mkdir -p "$d/sources.list.d" "$d/lists/partial" "$d/cache/archives/partial"
    printf '%s\n' "$2" >"$d/sources.list.d/private.sources"
    APT_OPTS=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$d/sources.list.d"
              -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o "Dir::State::status=/dev/null"
              -o "APT::Sandbox::User=root" -o "Acquire::Retries=3")
    # refresh at most once an hour (the lists are the cache key of everything downloaded)
    if [ -z "$(find "$d/lists" -maxdepth 1 -name '*Sources*' -o -maxdepth 1 -name '*Packages*' -mmin -60 2>/dev/null | head -n1)" ]; then
        logged "apt-update-$1" apt-get "${APT_OPTS[@]}" update || return 1
    fi
}

apt_bookworm_sources() {
    local m; m=$(debian_mirror)
    apt_private bookworm-src "Types: deb-src
URIs: $m
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: ${m%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
}

apt_trixie_sources() {  # python3.13 (trixie is the oldest suite that has it)
    local m; m=$(debian_mirror)
    apt_private trixie-src "Types: deb-src
URIs: $m
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: ${m%/debian}/debian-security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
}

# fetch_source PKG[=VER] WANT_DEBIAN(0|1): download PKG's orig tarball (and, if asked, its
# .debian.tar.*) into $SRC_DIR, checked against the Sources index hashes. Prints the orig path.
# Uses --print-uris + apt-helper so a missing .dsc (seen for security uploads) is not fatal.
fetch_source() {
    local spec=$1 want_debian=$2 uri file size hash orig="" deb=""
    mkdir -p "$SRC_DIR"
    while read -r uri file _ hash; do
        uri=${uri//\'/}
        local want=0
        if [[ $file == *.orig.tar.* && $file != *.asc ]]; then orig=$file; want=1
        elif [[ $file == *.debian.tar.* ]]; then deb=$file; want=$want_debian
        fi
        if [ "$want" = 1 ] && [ ! -s "$SRC_DIR/$file" ]; then
            /usr/lib/apt/apt-helper "${APT_OPTS[@]}" download-file "$uri" "$SRC_DIR/$file.part" "$hash" \
                >>"$LOG_DIR/downloads.log" 2>&1 || { echo "download failed: $uri" >&2; return 1; }
            mv "$SRC_DIR/$file.part" "$SRC_DIR/$file"
        fi
    done < <(apt-get "${APT_OPTS[@]}" source --print-uris -qq "$spec" 2>>"$LOG_DIR/downloads.log" | grep "^'")
    [ -n "$orig" ] || { echo "no source package found for '$spec'" >&2; return 1; }
    if [ "$want_debian" = 1 ]; then
        [ -n "$deb" ] || { echo "'$spec' has no .debian.tar" >&2; return 1; }
        echo "$SRC_DIR/$orig $SRC_DIR/$deb"
    else
        echo "$SRC_DIR/$orig"
    fi
}

# unpack TARBALL DIR: extract a source tarball into DIR (contents of its top-level directory).
unpack() {
    rm -rf "$2"; mkdir -p "$2"
    tar -xf "$1" -C "$2" --strip-components=1
}

# ---------------------------------------------------------------- the final prefix
# at_prefix TREE PREFIX CMD...: run CMD in a private mount namespace where TREE is mounted at
# PREFIX. Nothing is created on the host: if PREFIX (or a parent) does not exist, its nearest
# existing ancestor is shadowed by a tmpfs that re-exposes the original entries by bind mounts.
at_prefix() {
    local tree=$1 prefix=$2; shift 2
    unshare -m --propagation private bash -euc '
        tree=$1 prefix=$2; shift 2
        if [ ! -d "$prefix" ]; then
            anc=$prefix; while [ ! -d "$anc" ]; do anc=$(dirname "$anc"); done
            keep=$(mktemp -d); mount --bind "$anc" "$keep"
            mount -t tmpfs -o mode=755 krunner-prefix "$anc"
            for e in "$keep"/* "$keep"/.[!.]*; do
                [ -e "$e" ] || [ -L "$e" ] || continue
                n=$anc/$(basename "$e")
                if [ -L "$e" ]; then cp -P "$e" "$n"
                elif [ -d "$e" ]; then mkdir "$n"; mount --rbind "$e" "$n"
                else touch "$n"; mount --bind "$e" "$n"; fi
            done
            mkdir -p "$prefix"
        fi
        mount --bind "$tree" "$prefix"
        exec "$@"' krunner-at-prefix "$tree" "$prefix" "$@"
}

# ---------------------------------------------------------------- archive
# reproducible_archive TREE OUTFILE LEVEL: sorted names, uid/gid 0, fixed mtimes, xz -T2 (fixed: the
# multi-threaded block layout, and so the bytes, must not depend on the machine).
reproducible_archive() {
    local tree=$1 out=$2 level=$3 epoch=${SOURCE_DATE_EPOCH:-0}
    mkdir -p "$(dirname "$out")"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" --clamp-mtime \
        --format=gnu -C "$tree" -cf - . | xz -T2 "-$level" -c >"$out.part"
    mv "$out.part" "$out"
}

human_size() { numfmt --to=iec --suffix=B "$(stat -c %s "$1")"; }
