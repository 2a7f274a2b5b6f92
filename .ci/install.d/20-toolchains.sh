# shellcheck shell=bash
# Compilers and runtimes the language kernels and batch tests drive (tests/test_kernel_*.py,
# tests/test_batch_e2e.py, tests/test_gateway_jlab.py). Under CI a missing one FAILS its tests
# (tests/toolcheck.py), so every toolchain the suite uses is installed here, idempotently:
#   gcc, g++, make           Debian packages (apt_install skips installed ones)
#   javac/java               default-jdk-headless, unless a JDK is already on PATH
#   node/npm                 Debian's nodejs/npm, unless node (e.g. NodeSource, which bundles npm) is there
#   rustc/cargo              rustup's in ~/.cargo/bin when present (put on PATH), else Debian's rustc/cargo
# Sourced by .ci/run (set -euo pipefail; exports reach the test run).
apt_install gcc g++ make
command -v javac >/dev/null 2>&1 || apt_install default-jdk-headless
command -v node >/dev/null 2>&1 || apt_install nodejs
command -v npm >/dev/null 2>&1 || apt_install npm
if ! command -v rustc >/dev/null 2>&1 && [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/rustc" ]; then
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
command -v rustc >/dev/null 2>&1 && command -v cargo >/dev/null 2>&1 || apt_install rustc cargo
for tool in gcc g++ make javac java node npm rustc cargo; do
    command -v "$tool" >/dev/null 2>&1 || { echo "20-toolchains: $tool is still missing after install" >&2; exit 1; }
done
