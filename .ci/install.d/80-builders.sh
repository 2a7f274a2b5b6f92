# shellcheck shell=bash
# CI: smoke-build the static-musl runtime (cold: no cache between CI runs) and test it in the
# root filesystems that need no download (tiny-glibc, musl-only, empty), including the runner
# answering `status` and a query from outside the chroot. Sourced by .ci/run (set -euo pipefail).
#
# When it runs (KRUNNER_BUILDERS_CI=auto, the default): only if the commit range touches the
# runtime's inputs -- builders/, setup.cfg, setup.py, MANIFEST.in, ai/backend/kernel/__main__.py
# or this file -- compared as `git diff --name-only ${KRUNNER_BUILDERS_BASE:-HEAD~20} HEAD`
# (a push carries many commits and CI does not know the previous landing: the last 20 commits
# stand for "this push"; set KRUNNER_BUILDERS_BASE to the push's base when it is known);
# if that range cannot be computed (first commit, shallow clone) it runs.
# KRUNNER_BUILDERS_CI=always / never force it. A cold run takes about 4-6 minutes on 2 cores.

krunner_builders_ci() {
    local mode=${KRUNNER_BUILDERS_CI:-auto} base=${KRUNNER_BUILDERS_BASE:-HEAD~20} changed
    local inputs='^(builders/|setup\.cfg$|setup\.py$|MANIFEST\.in$|ai/backend/kernel/__main__\.py$|\.ci/install\.d/80-builders\.sh$)'
    if [ "$mode" = never ]; then
        echo "builders: SKIPPED (KRUNNER_BUILDERS_CI=never)"; return 0
    fi
    if [ "$mode" = auto ]; then
        if changed=$(git diff --name-only "$base" HEAD 2>/dev/null); then
            if ! grep -qE "$inputs" <<<"$changed"; then
                echo "builders: SKIPPED runtime smoke build: $base..HEAD touches none of builders/, setup.cfg," \
                     "setup.py, MANIFEST.in, ai/backend/kernel/__main__.py (set KRUNNER_BUILDERS_CI=always to force)"
                return 0
            fi
            echo "builders: $base..HEAD touches the runtime's inputs: running the smoke build"
        else
            echo "builders: cannot diff $base..HEAD (first commit or shallow clone): running the smoke build"
        fi
    fi
    apt_install debootstrap musl-tools patchelf busybox-static tcl xz-utils binutils file patch make gcc perl
    local out work rc=0 t0=$SECONDS
    out=$(mktemp -d /var/tmp/krunner-ci-out.XXXXXX)
    work=${KRUNNER_BUILDERS_WORK:-/var/tmp/krunner-builders}
    builders/build.sh static-musl --smoke --deps runner+ipykernel --work "$work" --out "$out" || rc=$?
    if [ "$rc" = 0 ]; then
        builders/test.sh --smoke --work "$work" "$out"/krunner-env.static-musl.*.tar.xz || rc=$?
    else
        echo "builders: matrix: 0 passed, 1 failed (the static-musl build failed)"
    fi
    rm -rf "$out"
    echo "builders: smoke build + test took $((SECONDS - t0)) s"
    if [ "$rc" != 0 ]; then
        echo "builders: FAILED (exit $rc)" >&2
        exit 1
    fi
}
krunner_builders_ci
unset -f krunner_builders_ci
