"""bench/scaling.py keeps working: a quick run prints every figure, finite, with bounded runner memory."""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNNER_PEAK_RSS_BOUND_MB = 200.0
ROW = re.compile(r"^\| (?P<figure>[^|]+?) \| (?P<values>[^|]+) \|$")


def test_quick_scaling_run_prints_every_figure_with_bounded_runner_memory(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "scaling.py"), "--quick"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, start_new_session=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {}
    for line in proc.stdout.splitlines():
        match = ROW.match(line)
        if match and match["figure"] not in ("figure", "---"):
            numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?|nan|inf", match["values"])]
            rows[match["figure"]] = numbers
    expected = [f"{path} {size} MB: {what}" for path in ("query", "batch") for size in (1, 4)
                for what in ("ours MB/s", "ratio ours/reference", "runner peak RSS MB")]
    expected += [f"kernels k={k}: {what}" for k in (1, 2)
                 for what in ("runner RSS growth per kernel MB", "runner overhead per kernel (difference) MB",
                              "kernel tree RSS each, gateway / jupyter_client MB")]
    for figure in expected:
        assert figure in rows, f"{figure!r} missing from:\n{proc.stdout}"
        values = rows[figure]
        assert len(values) in (3, 6) and all(math.isfinite(v) for v in values), (figure, values)
    for figure, values in rows.items():
        if figure.endswith("MB/s") or "ratio" in figure:
            assert min(values) > 0, (figure, values)
        if "runner peak RSS" in figure:
            assert 0 < max(values) < RUNNER_PEAK_RSS_BOUND_MB, (figure, values)
        if "kernel tree RSS each" in figure:
            assert min(values) > 5, (figure, values)  # a started ipykernel is tens of MB: the tree was found
    assert "load average at start:" in proc.stdout and "load average at end:" in proc.stdout
