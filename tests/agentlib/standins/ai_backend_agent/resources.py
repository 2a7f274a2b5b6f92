"""Stand-in for the agent's `resources` module: `KernelResourceSpec` is an annotation only."""


class KernelResourceSpec:
    """Placeholder: resource allocation is not part of the code-runner protocol."""
