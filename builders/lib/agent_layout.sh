# shellcheck shell=bash
# The agent-layout stage of builders/test.sh: a runtime started the way a Backend.AI agent starts
# it (docs/deployment.md), in a private mount and network namespace:
#   - the archive's tree read-only at /opt/backend.ai inside a minimal root filesystem;
#   - backend.ai-kernel's own ai/backend/{kernel,helpers} (the agent's runner, from PyPI)
#     bind-mounted read-only over lib/pythonX.Y/site-packages/ai/backend/{kernel,helpers};
#   - /home/work (owned by the user), /home/config/intrinsic-ports.json and environ.txt;
#   - the agent's environment (LD_LIBRARY_PATH=/opt/backend.ai/lib, HOME=/home/work, ...) and
#     command line `/opt/backend.ai/bin/python -s -m ai.backend.kernel --debug python`, cwd
#     /home/work, as uid/gid 1000 (chroot --userspec: what entrypoint.sh's su-exec does);
#   - then the agent's own client (lib/agent_layout_probe.py) talks to it from the namespace.
# Modes: bridge (our runner must answer), agent (KRUNNER_RUNNER=agent: the mounted runner must
# answer), no-mount (KRUNNER_RUNNER=agent with nothing mounted: a clear error, exit 78).

AGENT_KERNEL_VERSION=${AGENT_KERNEL_VERSION:-26.9.6}
LAYOUT_UID=1000

# agent_kernel_packages: download backend.ai-kernel and -helper (never committed) and unpack
# them once under $WORK/agent-kernel/VERSION; prints that directory (holding ai/backend/...).
agent_kernel_packages() {
    local d=$WORK/agent-kernel/$AGENT_KERNEL_VERSION
    if [ ! -f "$d/.complete" ]; then
        rm -rf "$d"; mkdir -p "$d/wheels" "$d/root"
        logged agent-kernel-download python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.13 \
            "backend.ai-kernel==$AGENT_KERNEL_VERSION" "backend.ai-kernel-helper==$AGENT_KERNEL_VERSION" -d "$d/wheels" || return 1
        local w; for w in "$d"/wheels/*.whl; do (cd "$d/root" && python3 -m zipfile -e "$w" .) || return 1; done
        chmod -R a+rX "$d/root"
        touch "$d/.complete"
    fi
    echo "$d/root"
}

# agent_layout_cell TREE ROOTFS PYV MODE: output on stdout; exit status 0 = as expected.
agent_layout_cell() {
    local kn; kn=$(agent_kernel_packages) || return 1
    unshare -m -n --propagation private bash -uc '
        tree=$1 r=$2 pyv=$3 mode=$4 kn=$5 lib=$6 repo=$7 uid=$8
        ip link set lo up || exit 20
        mount --bind "$r" "$r"
        mkdir -p "$r/opt/backend.ai" "$r/home"
        mount --bind "$tree" "$r/opt/backend.ai" && mount -o remount,bind,ro "$r/opt/backend.ai"
        site=$r/opt/backend.ai/lib/python$pyv/site-packages/ai/backend
        if [ "$mode" != no-mount ]; then
            for d in kernel helpers; do
                mount --bind "$kn/ai/backend/$d" "$site/$d" && mount -o remount,bind,ro "$site/$d" || exit 21
            done
        fi
        mount -t proc proc "$r/proc"
        mount --rbind /dev "$r/dev"
        mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
        mount -t tmpfs -o mode=755 tmpfs "$r/home"
        mkdir -p "$r/home/work" "$r/home/config"
        read -r pin pout < <(python3 -c "
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind((\"127.0.0.1\", 0))
print(*(s.getsockname()[1] for s in ss))")
        printf "{\"replin\": %d, \"replout\": %d, \"sshd\": 2200, \"ttyd\": 7681}\n" "$pin" "$pout" >"$r/home/config/intrinsic-ports.json"
        printf "BACKENDAI_KERNEL_ID=layout-test\n" >"$r/home/config/environ.txt"
        printf "print(\"batch says\", 6 * 7)\n" >"$r/home/work/main.py"
        chown -R "$uid:$uid" "$r/home/work"
        # the user entrypoint.sh creates from LOCAL_USER_ID
        for f in passwd group; do cp "$r/etc/$f" "/tmp/layout-$f.$$"; done
        echo "work:x:$uid:$uid::/home/work:/bin/sh" >>"/tmp/layout-passwd.$$"
        echo "work:x:$uid:" >>"/tmp/layout-group.$$"
        mount --bind "/tmp/layout-passwd.$$" "$r/etc/passwd"; mount --bind "/tmp/layout-group.$$" "$r/etc/group"
        E=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/home/work USER=work
           LOGNAME=work LANG=C.UTF-8 LD_LIBRARY_PATH=/opt/backend.ai/lib LOCAL_USER_ID=$uid LOCAL_GROUP_ID=$uid
           BACKENDAI_KERNEL_ID=layout-test BACKENDAI_SESSION_ID=layout-test)
        args=(); expect=bridge
        case $mode in
            agent) E+=(KRUNNER_RUNNER=agent); args=(/opt/backend.ai/bin/python); expect=agent ;;
            no-mount) E+=(KRUNNER_RUNNER=agent) ;;
        esac
        cmd="cd /home/work && exec /opt/backend.ai/bin/python -s -m ai.backend.kernel --debug python ${args[*]}"
        echo "command: ${E[*]} chroot --userspec=$uid:$uid ROOTFS sh -c \"$cmd\""
        if [ "$mode" = no-mount ]; then
            rc=0
            timeout -k 5 30 "${E[@]}" chroot --userspec="$uid:$uid" --groups="$uid" "$r" /bin/sh -c "$cmd" >"$r/tmp/runner.log" 2>&1
            code=$?
            if [ "$code" = 78 ] && grep -q "nothing is mounted at" "$r/tmp/runner.log"; then
                echo "ok   without the mount points: exit 78, \"$(head -c 200 "$r/tmp/runner.log")...\""
            else echo "FAIL exit $code (124: still running after 30 s)"; rc=1; fi
            pid=""
        else
            setsid "${E[@]}" chroot --userspec="$uid:$uid" --groups="$uid" "$r" /bin/sh -c "$cmd" >"$r/tmp/runner.log" 2>&1 &
            pid=$!
            PYTHONPATH=$repo python3 "$lib/agent_layout_probe.py" "$pin" "$pout" --expect "$expect" --timeout 120; rc=$?
        fi
        [ -z "$pid" ] || kill -TERM -- "-$pid" 2>/dev/null
        if [ -n "$pid" ]; then
            for _ in $(seq 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL -- "-$pid" 2>/dev/null; wait "$pid" 2>/dev/null
        fi
        if grep -q "Read-only file system" "$r/tmp/runner.log"; then
            echo "FAIL something tried to write under a read-only mount:"; grep -m3 "Read-only file system" "$r/tmp/runner.log"; rc=1
        fi
        rm -f "/tmp/layout-passwd.$$" "/tmp/layout-group.$$"
        if [ "$rc" != 0 ]; then echo "--- runner log (last 30 lines)"; tail -n 30 "$r/tmp/runner.log"; fi
        exit "$rc"
    ' krunner-agent-layout "$1" "$2" "$3" "$4" "$kn" "$BUILDERS_DIR/lib" "$REPO_DIR" "$LAYOUT_UID"
}
