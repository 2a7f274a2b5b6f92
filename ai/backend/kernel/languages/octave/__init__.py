"""Octave: exec `octave-cli main.m` (checks main.m, not main.js as the original)."""
from .. import Language, interpret

LANGUAGE = Language(
    name="octave", kernelspec="octave", default_runtime="/usr/bin/octave-cli",
    exec=interpret("octave-cli", "octave", entry="main.m"),
    install_hint="apt-get install octave",
)
