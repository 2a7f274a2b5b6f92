"""Command line. The agent contract comes first: `python -m ai.backend.kernel [--debug] LANG [RUNTIME_PATH]`
(plus options, see `--help-all`); extra subcommands follow it (`gateway`)."""
from __future__ import annotations

import sys

from .languages import names

SUBCOMMANDS = {"gateway": "ai.backend.kernel.gateway.__main__"}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
        return
    from .app import RunnerApp

    app = RunnerApp()
    app.initialize(argv)
    if not app.extra_args or app.extra_args[0] not in names() or len(app.extra_args) > 2:
        langs = ", ".join(names())
        sys.exit(f"usage: python -m ai.backend.kernel [--debug] [options] LANG [RUNTIME_PATH]\nLANG is one of: {langs}")
    app.start()


if __name__ == "__main__":
    main()
