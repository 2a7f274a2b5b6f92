"""Stand-in for the `ai.backend.common` package (backend.ai-common 26.9.6), only the parts the
agent's kernel.py imports. Mounted by tests/agentlib/loader.py."""
