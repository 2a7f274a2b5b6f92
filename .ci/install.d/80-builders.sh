# shellcheck shell=bash
# CI for the runner's runtime (docs/runtime.md). Sourced by .ci/run (set -euo pipefail).
#
# 1. Always: Python 3.13 for tests/test_agent_plugin.py (backend.ai-agent 26.9.6 requires it).
#    Found as $KRUNNER_PYTHON313, pyenv's 3.13 builds, or python3.13 on PATH; the step fails with
#    a clear message when there is none. The agent's venv (~/.cache/krunner-bridge/agent-venv-*)
#    is created here, so the test itself does not spend its time in pip.
# 2. When the runtime's inputs changed: smoke-build static-musl (cold: no cache between CI runs,
#    with its agent plugin wheel) and test it in the root filesystems that need no download
#    (tiny-glibc, musl-only, empty), including the runner answering from outside the chroot and
#    the agent-layout stage (the runtime started as a Backend.AI agent starts it, with
#    backend.ai-kernel's package mounted over its mount points, driven by the agent's client).
#
# When 2 runs (KRUNNER_BUILDERS_CI=auto, the default): only if the commit range touches the
# runtime's inputs -- builders/, setup.cfg, setup.py, MANIFEST.in, ai/backend/kernel/__main__.py
# or this file -- compared as `git diff --name-only ${KRUNNER_BUILDERS_BASE:-HEAD~20} HEAD`
# (a push carries many commits and CI does not know the previous landing: the last 20 commits
# stand for "this push"; set KRUNNER_BUILDERS_BASE to the push's base when it is known);
# if that range cannot be computed (first commit, shallow clone) it runs.
# KRUNNER_BUILDERS_CI=always / never force it. See docs/runtime.md for its measured cold time.

krunner_python313() {
    local py
    py=$(python3 -c 'from tests.agentplugin import find_python313; print(find_python313() or "")')
    if [ -z "$py" ]; then
        echo "builders: FAILED: no Python 3.13 (needed to install backend.ai-agent 26.9.6 for" \
             "tests/test_agent_plugin.py). Install one (pyenv install 3.13) or set KRUNNER_PYTHON313." >&2
        exit 1
    fi
    export KRUNNER_PYTHON313=$py
    python3 -c 'import sys; from tests.agentplugin import agent_venv; agent_venv(sys.argv[1])' "$py" || {
        echo "builders: FAILED: could not install backend.ai-agent into a Python 3.13 venv" >&2; exit 1; }
}
krunner_python313
unset -f krunner_python313

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
    apt_install debootstrap musl-tools patchelf busybox-static tcl xz-utils binutils file patch make gcc perl iproute2
    local out work rc=0 t0=$SECONDS
    out=$(mktemp -d /var/tmp/krunner-ci-out.XXXXXX)
    work=${KRUNNER_BUILDERS_WORK:-/var/tmp/krunner-builders}
    builders/build.sh static-musl --smoke --work "$work" --out "$out" || rc=$?
    if [ "$rc" = 0 ]; then
        # xz -1 here: the size limit (35 MB) is for the xz -6 release build, see docs/runtime.md
        echo "builders: wheel $(basename "$out"/*.whl) $(du -m "$out"/*.whl | cut -f1) MB (smoke, xz -1)"
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
