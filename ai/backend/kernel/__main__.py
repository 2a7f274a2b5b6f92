"""Command line. The agent contract comes first: `python -m ai.backend.kernel [--debug] LANG [RUNTIME_PATH]`
(plus options, see `--help-all`); extra subcommands follow it (`gateway`)."""
from __future__ import annotations

import asyncio
import sys

from .languages import get_language, names

SUBCOMMANDS = {"gateway": "ai.backend.kernel.gateway.__main__"}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
        return
    from .app import RunnerApp
    from .logsetup import configure_logging
    from .runner import Runner, StartupError

    app = RunnerApp()
    app.initialize(argv)
    if not app.extra_args or app.extra_args[0] not in names() or len(app.extra_args) > 2:
        langs = ", ".join(names())
        sys.exit(f"usage: python -m ai.backend.kernel [--debug] [options] LANG [RUNTIME_PATH]\nLANG is one of: {langs}")
    app.log = configure_logging(get_language(app.lang).prefix, app.debug)
    try:
        asyncio.run(Runner(app).serve())
    except StartupError as e:
        sys.exit(f"krunner: {e}")


if __name__ == "__main__":
    main()
