#!/bin/bash
# Test runtime archives in minimal root filesystems: mount each at its prefix inside each rootfs
# (chroot in a private mount namespace, read-only), check the stdlib C modules, the runner's
# dependencies, a ZeroMQ round trip, and the runner answering `status` and a query from outside.
set -euo pipefail
BUILDERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
source "$BUILDERS_DIR/lib/common.sh"
# shellcheck source=lib/rootfs.sh
source "$BUILDERS_DIR/lib/rootfs.sh"
# shellcheck source=lib/agent_layout.sh
source "$BUILDERS_DIR/lib/agent_layout.sh"

usage() {
    cat <<EOF
usage: builders/test.sh [options] TARBALL...

Root filesystems (cached in WORK/rootfs): ${ROOTFS_ALL[*]}
Expected: static-musl passes everywhere; static-gnu passes where glibc >= its floor (2.30)
and fails (reported as an expected failure, with the loader's message) elsewhere.

options
  --rootfs LIST   comma-separated subset of the root filesystems above
  --smoke         only the rootfs that need no download: ${ROOTFS_SMOKE[*]}
  --no-runner     skip the runner status/query check
  --no-agent-layout  skip the agent-layout stage (the runtime started as a Backend.AI agent
                  starts it, with backend.ai-kernel $AGENT_KERNEL_VERSION mounted over its mount points,
                  driven by the agent's own client; static-gnu in tiny-glibc, static-musl in musl)
  --work DIR      work directory (default: /var/tmp/krunner-builders)
  -h, --help      this text
Prints one line per cell and "matrix: N passed, N failed"; exits 1 if any cell is unexpected.
EOF
}

WORK=/var/tmp/krunner-builders ROOTFS_LIST=("${ROOTFS_ALL[@]}") RUNNER=1 AGENT_LAYOUT=1 TARBALLS=()
while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --rootfs) IFS=, read -r -a ROOTFS_LIST <<<"$2"; shift ;;
        --smoke) ROOTFS_LIST=("${ROOTFS_SMOKE[@]}") ;;
        --no-runner) RUNNER=0 ;;
        --no-agent-layout) AGENT_LAYOUT=0 ;;
        --work) WORK=$2; shift ;;
        -*) usage >&2; die "unknown option $1" ;;
        *) TARBALLS+=("$(realpath "$1")") ;;
    esac
    shift
done
[ ${#TARBALLS[@]} -gt 0 ] || { usage >&2; exit 2; }
need_root
need_tools unshare:util-linux chroot:coreutils xz:xz-utils patchelf:patchelf busybox:busybox-static strings:binutils ip:iproute2
python3 -c 'import zmq, msgpack' 2>/dev/null || die "the host python3 needs pyzmq and msgpack (runner probe)"
mkdir -p "$WORK"; WORK=$(realpath "$WORK")
TAG=test LOG_DIR=$WORK/logs/test
mkdir -p "$LOG_DIR"

# run_cell TREE PREFIX ROOTFS QUERY: the checks of one runtime in one rootfs; output on stdout.
run_cell() {
    unshare -m --propagation private bash -uc '
        tree=$1 prefix=$2 r=$3 lib=$4 runner=$5 query=$6
        mount --bind "$r" "$r"
        mkdir -p "$r$prefix"
        mount --bind "$tree" "$r$prefix" && mount -o remount,bind,ro "$r$prefix"
        mount -t proc proc "$r/proc"
        mount --rbind /dev "$r/dev"
        mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
        mkdir -p "$r/tmp/work" "$r/tmp/config"
        cp "$lib/check_runtime.py" "$r/tmp/"
        E=(env -i "PATH=$prefix/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" HOME=/tmp/work USER=root
           LOGNAME=root LANG=C.UTF-8 TERM=dumb)
        "${E[@]}" chroot "$r" "$prefix/bin/python3" -I /tmp/check_runtime.py 2>&1 || exit 10
        [ "$runner" = 1 ] || exit 0
        read -r pin pout < <(python3 -c "
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind((\"127.0.0.1\", 0))
print(*(s.getsockname()[1] for s in ss))")
        setsid "${E[@]}" chroot "$r" "$prefix/bin/python3" -m ai.backend.kernel --replin-port "$pin" \
            --replout-port "$pout" --work-dir /tmp/work --config-dir /tmp/config python >"$r/tmp/runner.log" 2>&1 &
        pid=$!
        noq=(); [ "$query" = 1 ] || noq=(--no-query)
        python3 "$lib/runner_probe.py" "$pin" "$pout" "${noq[@]}" --timeout 90; rc=$?
        kill -TERM -- "-$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null; wait "$pid" 2>/dev/null
        if [ "$rc" != 0 ]; then echo "--- runner log (last 25 lines)"; tail -n 25 "$r/tmp/runner.log"; exit 11; fi
        [ "$query" = 1 ] || echo "skip runner query: this runtime has no ipykernel (dependency set runner)"
        exit 0
    ' krunner-test-cell "$1" "$2" "$3" "$BUILDERS_DIR/lib" "$RUNNER" "$4"
}

# expect FLAVOUR FLOOR ROOTFS_LIBC: "pass" or "fail"
expect() {
    local flavour=$1 floor=$2 libc=$3
    [ "$flavour" = static-musl ] && { echo pass; return; }
    case $libc in
        "glibc "*) if [ "$(printf '%s\n%s\n' "$floor" "${libc#glibc }" | sort -V | head -n1)" = "$floor" ]; then echo pass; else echo fail; fi ;;
        *) echo fail ;;
    esac
}

say "preparing root filesystems: ${ROOTFS_LIST[*]}"
declare -A RPATH RLIBC
for name in "${ROOTFS_LIST[@]}"; do
    t0=$(_now)
    RPATH[$name]=$(make_rootfs "$name") || die "could not build rootfs $name"
    RLIBC[$name]=$(sed -n 's/^libc=//p' "${RPATH[$name]}/.krunner-rootfs")
    say "    $name: ${RLIBC[$name]} ($(du -sh "${RPATH[$name]}" | cut -f1), $(_secs "$t0" "$(_now)") s)"
done

passed=0 failed=0 xfail=0 RESULTS=()
for tarball in "${TARBALLS[@]}"; do
    base=$(basename "$tarball" .tar.xz)
    tree=$WORK/test/$base/tree
    rm -rf "$WORK/test/$base"; mkdir -p "$tree"
    t0=$(_now)
    tar -xf "$tarball" -C "$tree"
    [ -f "$tree/.krunner-env.json" ] || die "$tarball has no .krunner-env.json: not a runtime archive"
    read -r flavour prefix floor query pyv < <(python3 -c '
import json, sys
i = json.load(open(sys.argv[1]))
floor = i.get("max_glibc_symbol", "GLIBC_0").replace("GLIBC_", "")
ipk = any(d.lower().startswith("ipykernel==") for d in i["distributions"])
print(i["flavour"], i["prefix"], floor, int(ipk), i["python"].rsplit(".", 1)[0] if i["python"].count(".") > 1 else i["python"])' "$tree/.krunner-env.json")
    say "$base: $flavour, prefix $prefix, unpacked in $(_secs "$t0" "$(_now)") s ($(du -sh --apparent-size "$tree" | cut -f1))"
    if python3 "$BUILDERS_DIR/lib/elfcheck.py" --flavour "$flavour" "$tree" "$prefix" >"$LOG_DIR/$base.elfcheck" 2>&1; then
        passed=$((passed + 1)); RESULTS+=("$base elfcheck PASS"); sed 's/^/    /' "$LOG_DIR/$base.elfcheck"
    else
        failed=$((failed + 1)); RESULTS+=("$base elfcheck FAIL"); sed 's/^/    /' "$LOG_DIR/$base.elfcheck"
    fi
    for name in "${ROOTFS_LIST[@]}"; do
        want=$(expect "$flavour" "$floor" "${RLIBC[$name]}")
        log=$LOG_DIR/$base.$name.log
        t0=$(_now)
        if run_cell "$tree" "$prefix" "${RPATH[$name]}" "$query" >"$log" 2>&1; then got=pass; else got=fail; fi
        dt=$(_secs "$t0" "$(_now)")
        if [ "$got" = "$want" ] && [ "$got" = pass ]; then
            verdict=PASS; passed=$((passed + 1))
        elif [ "$got" = "$want" ]; then
            verdict="XFAIL (expected: needs glibc >= $floor, rootfs has ${RLIBC[$name]})"; passed=$((passed + 1)); xfail=$((xfail + 1))
        elif [ "$got" = fail ]; then
            verdict=FAIL; failed=$((failed + 1))
        else
            verdict="FAIL (unexpectedly passed: expected a failure)"; failed=$((failed + 1))
        fi
        say "$base in $name (${RLIBC[$name]}): $verdict [${dt}s]"
        sed 's/^/      | /' "$log"
        RESULTS+=("$base $name ${verdict%% *}")
    done
    if [ "$AGENT_LAYOUT" = 1 ]; then
        lrootfs=tiny-glibc; [ "$flavour" = static-musl ] && lrootfs=musl
        if [ "$prefix" != /opt/backend.ai ] || [ "$query" != 1 ] || [ ! -d "$tree/lib/krunner-bridge/ai/backend/kernel" ]; then
            say "$base agent layout: SKIPPED (needs prefix /opt/backend.ai, ipykernel and the runner in lib/krunner-bridge)"
        else
            lpath=$(make_rootfs "$lrootfs") || die "could not build rootfs $lrootfs"
            for mode in bridge agent no-mount; do
                if [ "$mode" = agent ] && [ "$pyv" != 3.13 ]; then
                    say "$base agent layout (agent): SKIPPED (backend.ai-kernel $AGENT_KERNEL_VERSION needs Python 3.13; this runtime has $pyv)"
                    continue
                fi
                log=$LOG_DIR/$base.agent-layout.$mode.log
                t0=$(_now)
                if agent_layout_cell "$tree" "$lpath" "$pyv" "$mode" >"$log" 2>&1; then
                    verdict=PASS; passed=$((passed + 1))
                else
                    verdict=FAIL; failed=$((failed + 1))
                fi
                say "$base agent layout ($mode, in $lrootfs): $verdict [$(_secs "$t0" "$(_now)")s]"
                sed 's/^/      | /' "$log"
                RESULTS+=("$base agent-layout-$mode $verdict")
            done
        fi
    fi
    rm -rf "$WORK/test/$base"
done

say "results:"
printf '    %s\n' "${RESULTS[@]}"
say "matrix: $passed passed, $failed failed ($xfail expected failures confirmed)"
[ "$failed" = 0 ]
