"""Errors of the services layer; their `repr` is what the agent sees in a failed `service-result`."""
from __future__ import annotations


class ServiceError(Exception):
    """Base class: anything that makes one service start fail (never the runner)."""


class InvalidServiceDefinition(ServiceError):
    """A service-def file (or a model-service config) that cannot be used as written."""


class DisallowedArgument(ServiceError):
    """The user asked for an argument the service-def does not list in `allowed_arguments`."""


class DisallowedEnvironment(ServiceError):
    """The user asked for an env var that is not allowed or would overwrite the runner's env."""
