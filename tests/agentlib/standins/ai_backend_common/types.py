"""Stand-in for ai.backend.common.types: the id NewTypes, two enums and `aobject`, with the same
definitions as the original (only the names kernel.py imports)."""

import enum
import uuid
from collections.abc import Sequence
from typing import Any, NewType, TypedDict

ContainerId = NewType("ContainerId", str)
SessionId = NewType("SessionId", uuid.UUID)
KernelId = NewType("KernelId", uuid.UUID)
AgentId = NewType("AgentId", str)


class SessionTypes(str, enum.Enum):  # original: CIStrEnum
    INTERACTIVE = "interactive"
    BATCH = "batch"
    INFERENCE = "inference"
    SYSTEM = "system"


class CommitStatus(str, enum.Enum):
    READY = "ready"
    ONGOING = "ongoing"


class ServicePort(TypedDict):
    name: str
    protocol: str
    container_ports: Sequence[int]
    host_ports: Sequence[int | None]
    is_inference: bool


class aobject:
    """An object with an async initialiser: `await Cls.new(...)` runs __init__ then __ainit__."""

    @classmethod
    async def new(cls, *args: Any, **kwargs: Any) -> Any:
        instance = super().__new__(cls)
        cls.__init__(instance, *args, **kwargs)
        await instance.__ainit__()
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def __ainit__(self) -> None:
        pass
