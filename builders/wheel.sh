#!/bin/bash
# Package existing runtime archives (one per arch, built by builders/build.sh) into the Backend.AI
# agent plugin wheel, without rebuilding anything. See docs/deployment.md.
set -euo pipefail
BUILDERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() {
    cat <<USAGE
usage: builders/wheel.sh --out DIR [--public-version V] [--volume-version N] ARCHIVE...

  ARCHIVE               krunner-env.FLAVOR.ARCH.tar.xz from builders/build.sh (one per arch,
                        all of one flavour); ARCH is x86_64 or aarch64
  --out DIR             where the wheel goes
  --public-version V    static-gnu: 4.4.0 (what backend.ai-agent 26.9.6 pins); static-musl: the
                        runner's version. The wheel's version is V+krunnerbridge.N
  --volume-version N    N of the agent's volume backendai-krunner.vN.ARCH.FLAVOR (default: the
                        archives' label, builders/VERSION; must be >= 1000)
Prints the wheel's path on stdout.
USAGE
}
case ${1:-} in -h|--help|"") usage; [ -n "${1:-}" ]; exit $? ;; esac
exec python3 "$BUILDERS_DIR/lib/make_wheel.py" "$@"
