"""krunner-bridge: the in-container kernel runner (agent protocol + Jupyter front-ends)."""

__version__ = "0.1.0"
