"""Print the runner's dependency set, read from setup.cfg (never duplicated here).

"runner": install_requires without ipykernel (an image with its own Python brings its kernel).
"runner+ipykernel": install_requires (query mode in images that have no Python at all).
"agent" (the agent plugin wheel's default): install_requires, the `languages` extra (what the
bundled kernelspecs import: bash_kernel, octave_kernel) and the few packages the agent-mounted
runner (backend.ai-kernel) imports beyond ours, so handing control to it works (docs/runtime.md).
"""
from __future__ import annotations

import argparse
import configparser
import re
import sys

SETS = ("runner", "runner+ipykernel", "agent")
ONLY_WITH_IPYKERNEL = {"ipykernel"}
# imported by backend.ai-kernel 26.x's runner and not by ours (its other imports we ship anyway)
AGENT_RUNNER_EXTRA = ["attrs>=25.3", "janus>=2.0", "namedlist>=1.8"]


def install_requires(setup_cfg: str) -> list[str]:
    """The non-empty, non-comment lines of [options] install_requires."""
    parser = configparser.ConfigParser()
    parser.read(setup_cfg, encoding="utf-8")
    return _lines(parser.get("options", "install_requires", fallback=""))


def extra_requires(setup_cfg: str, extra: str) -> list[str]:
    """The requirements of one [options.extras_require] entry."""
    parser = configparser.ConfigParser()
    parser.read(setup_cfg, encoding="utf-8")
    return _lines(parser.get("options.extras_require", extra, fallback=""))


def _lines(raw: str) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in raw.splitlines() if line.split("#", 1)[0].strip()]


def project_name(requirement: str) -> str:
    """The normalized distribution name of a PEP 508 requirement string."""
    name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    if not name:
        raise ValueError(f"cannot parse requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def select(requirements: list[str], dep_set: str) -> list[str]:
    """The requirements of one dependency set."""
    if dep_set in ("runner+ipykernel", "agent"):
        return list(requirements)
    return [r for r in requirements if project_name(r) not in ONLY_WITH_IPYKERNEL]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("setup_cfg")
    ap.add_argument("--set", choices=SETS, default="runner")
    args = ap.parse_args(argv)
    reqs = select(install_requires(args.setup_cfg), args.set)
    if reqs and args.set == "agent":
        reqs += extra_requires(args.setup_cfg, "languages") + AGENT_RUNNER_EXTRA
    if not reqs:
        print(f"no install_requires found in {args.setup_cfg}", file=sys.stderr)
        return 1
    print("\n".join(reqs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
