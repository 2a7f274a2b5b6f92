"""Print the runner's dependency set, read from setup.cfg's install_requires (never duplicated).

The "runner" set leaves ipykernel out: an image with its own Python brings its own kernel.
The "runner+ipykernel" set is for images that have no Python at all.
"""
from __future__ import annotations

import argparse
import configparser
import re
import sys

SETS = ("runner", "runner+ipykernel")
ONLY_WITH_IPYKERNEL = {"ipykernel"}


def install_requires(setup_cfg: str) -> list[str]:
    """The non-empty, non-comment lines of [options] install_requires."""
    parser = configparser.ConfigParser()
    parser.read(setup_cfg, encoding="utf-8")
    raw = parser.get("options", "install_requires", fallback="")
    return [line.split("#", 1)[0].strip() for line in raw.splitlines() if line.split("#", 1)[0].strip()]


def project_name(requirement: str) -> str:
    """The normalized distribution name of a PEP 508 requirement string."""
    name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    if not name:
        raise ValueError(f"cannot parse requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def select(requirements: list[str], dep_set: str) -> list[str]:
    """The requirements of one dependency set."""
    if dep_set == "runner+ipykernel":
        return list(requirements)
    return [r for r in requirements if project_name(r) not in ONLY_WITH_IPYKERNEL]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("setup_cfg")
    ap.add_argument("--set", choices=SETS, default="runner")
    args = ap.parse_args(argv)
    reqs = select(install_requires(args.setup_cfg), args.set)
    if not reqs:
        print(f"no install_requires found in {args.setup_cfg}", file=sys.stderr)
        return 1
    print("\n".join(reqs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
