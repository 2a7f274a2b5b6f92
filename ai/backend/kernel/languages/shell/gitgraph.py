"""`%show graph [PATH]` of the git runtime: the original's commit list, plus an SVG of it.

The commit list is what the original runner sent as `application/vnd.sorna.gitgraph` (see
docs/runtimes.md): every commit of every ref, oldest first in topological order, each with its
short `oid`, short `parent_ids` (`[""]` for a root commit, as the original had it), `author`
(the committer's name, as the original took it), `message` (subject), the `branch` git's
`--source` walk over the local branches reached it by, and its parents' branches. Errors from git come back
as `GitError` carrying git's own message.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
from html import escape
from pathlib import Path
from typing import Any

MEDIA_TYPE = "application/vnd.sorna.gitgraph"
GIT_TIMEOUT = 60.0  # seconds; a huge repository still answers well within this
_SOURCE_RE = re.compile(r"\b([0-9a-f]{40}|[0-9a-f]{64})\t(\S+)")
_FIELD, _RECORD = "\x1f", "\x1e"
_LANE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


class GitError(Exception):
    """git failed (or the path is unusable); the message is what the user should see."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise GitError(f"{self.format_usage()}%{self.prog}: error: {message}")


def parse_show(line: str) -> argparse.Namespace:
    """`%show graph [PATH]` (the leading `%` already removed) -> target, path."""
    parser = _Parser(prog="show", add_help=False)
    parser.add_argument("target", choices=("graph",))
    parser.add_argument("path", nargs="?", default=".")
    try:
        words = shlex.split(line, comments=True)
    except ValueError as e:
        raise GitError(f"%show: {e}") from None
    return parser.parse_args(words[1:])


def _git(repo: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              errors="replace", timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise GitError("git is not installed (apt-get install git)") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {GIT_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        raise GitError(proc.stderr.strip() or f"git {args[0]} exited with status {proc.returncode}")
    return proc.stdout


def commit_graph(repo: Path) -> list[dict[str, Any]]:
    """The original's commit list for the repository at (or above) `repo`."""
    if not repo.is_dir():
        raise GitError(f"{repo}: no such directory")
    branch_of: dict[str, str] = {}
    walk = _git(repo, "log", "--no-color", "--pretty=oneline", "--no-abbrev-commit", "--graph",
                "--source", "--branches")
    for m in _SOURCE_RE.finditer(walk):
        branch_of.setdefault(m.group(1), m.group(2))
    log = _git(repo, "log", "--no-color", "--all", "--topo-order", "--reverse",
               f"--pretty=format:%H{_FIELD}%h{_FIELD}%P{_FIELD}%p{_FIELD}%s{_FIELD}%cn{_RECORD}")
    commits = []
    for record in log.split(_RECORD):
        fields = record.lstrip("\n").split(_FIELD)
        if len(fields) != 6:
            continue
        full, short, parents, short_parents, subject, author = fields
        commits.append({
            "oid": short,
            # split on " " as the original did: a root commit has parent_ids [""] there
            "parent_ids": short_parents.split(" "),
            "author": author,
            "message": subject,
            "branch": branch_of.get(full),
            "parent_branches": [branch_of.get(p) for p in parents.split(" ")],
        })
    return commits


def render_svg(commits: list[dict[str, Any]]) -> str:
    """Newest commit on top, one lane (column, colour) per branch, an edge to each parent."""
    lanes: dict[str | None, int] = {}
    for c in commits:
        lanes.setdefault(c["branch"], len(lanes))
    row_of = {c["oid"]: len(commits) - 1 - i for i, c in enumerate(commits)}
    step_x, step_y, pad = 22, 26, 16

    def at(oid: str, branch: str | None) -> tuple[int, int]:
        return pad + lanes.get(branch, 0) * step_x, pad + row_of[oid] * step_y

    text_x = pad + max(len(lanes), 1) * step_x + 8
    longest = max((len(c["oid"]) + len(c["message"]) + len(c["branch"] or "") + 4 for c in commits), default=10)
    width, height = text_x + 7 * min(longest, 120) + pad, pad * 2 + max(len(commits) - 1, 0) * step_y
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="monospace" font-size="12">']
    for c in commits:
        x, y = at(c["oid"], c["branch"])
        for parent, parent_branch in zip(c["parent_ids"], c["parent_branches"]):
            if parent in row_of:
                px, py = at(parent, parent_branch)
                color = _LANE_COLORS[lanes.get(c["branch"] if px == x else parent_branch, 0) % len(_LANE_COLORS)]
                parts.append(f'<path class="edge" data-from="{escape(c["oid"])}" data-to="{escape(parent)}" '
                             f'd="M{x},{y} C{x},{py - step_y // 2} {px},{y + step_y // 2} {px},{py}" '
                             f'stroke="{color}" stroke-width="2" fill="none"/>')
    for c in commits:
        x, y = at(c["oid"], c["branch"])
        color = _LANE_COLORS[lanes[c["branch"]] % len(_LANE_COLORS)]
        label = f'{c["oid"]} {c["message"]}' + (f' ({c["branch"]})' if c["branch"] else "")
        parts.append(f'<circle class="commit" data-oid="{escape(c["oid"])}" cx="{x}" cy="{y}" r="5" '
                     f'fill="{color}"><title>{escape(c["author"])}</title></circle>')
        parts.append(f'<text x="{text_x}" y="{y + 4}">{escape(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def render_text(commits: list[dict[str, Any]]) -> str:
    """Plain-text fallback: newest first, `oid  branch  message`."""
    return "\n".join(f'{c["oid"]}  {c["branch"] or "-"}  {c["message"]}' for c in reversed(commits))


def show_graph_bundle(line: str, cwd: Path) -> dict[str, Any]:
    """The display_data bundle for one `%show ...` line run in `cwd`. Raises GitError."""
    args = parse_show(line)
    path = Path(args.path).expanduser()
    commits = commit_graph(path if path.is_absolute() else cwd / path)
    # JSON text: nbformat only allows JSON values under */json and *+json types (the runner gives
    # the agent the parsed list, as the original sent it)
    return {MEDIA_TYPE: json.dumps(commits), "image/svg+xml": render_svg(commits), "text/plain": render_text(commits)}
