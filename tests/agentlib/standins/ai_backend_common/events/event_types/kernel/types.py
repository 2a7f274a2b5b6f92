"""Stand-in for ai.backend.common.events.event_types.kernel.types (annotation only in kernel.py)."""

import enum


class KernelLifecycleEventReason(str, enum.Enum):
    EXEC_TIMEOUT = "exec-timeout"
    USER_REQUESTED = "user-requested"
