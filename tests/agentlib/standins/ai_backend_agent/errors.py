"""Stand-in for the agent's `errors` package: the exception classes kernel.py imports, as plain
exceptions (the originals also derive from aiohttp HTTP errors and carry Backend.AI error codes)."""


class BackendAIError(Exception):
    pass


class InvalidArgumentError(BackendAIError):
    pass


class InvalidSocket(BackendAIError):
    pass


class KernelRunnerNotInitializedError(BackendAIError):
    pass


class OutputQueueMismatchError(BackendAIError):
    pass


class OutputQueueNotInitializedError(BackendAIError):
    pass


class RunIdNotSetError(BackendAIError):
    pass


class UnsupportedBaseDistroError(BackendAIError):
    pass
