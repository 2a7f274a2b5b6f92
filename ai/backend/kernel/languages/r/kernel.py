"""The R kernel of the `r` kernelspec: one persistent R in a pty, driven by driver.R
(`python -m ai.backend.kernel.languages.r.kernel -f CONN`; docs/languages.md#r).

IRkernel runs ~15 ms of R code per cell (two `evaluate()` calls, JSON and HMAC in R). Here R
only runs the cell: the Jupyter protocol stays in Python (ipykernel), R is told "run this file"
on one console line and answers on marker lines (repl.py). R is spawned before ipykernel is
imported, so its start overlaps the kernel's own (early.py).
"""
from __future__ import annotations

if __name__ == "__main__":  # before ipykernel's imports
    from .early import start_early

    start_early()

from ..kernelbase.common import launch  # noqa: E402
from .repl import RKernel  # noqa: E402

if __name__ == "__main__":
    launch(RKernel)
