"""Stand-in for the agent's `types` module: the three names kernel.py imports, same fields."""

import enum
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class AgentEventData:
    type: str
    data: dict[str, Any]


class KernelLifecycleStatus(str, enum.Enum):
    PREPARING = "preparing"
    RUNNING = "running"
    TERMINATING = "terminating"


@dataclass
class KernelOwnershipData:
    kernel_id: Any
    session_id: Any
    agent_id: str
    owner_user_id: uuid.UUID | None = None
    owner_project_id: uuid.UUID | None = None
