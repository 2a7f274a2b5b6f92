"""Stand-in for ai.backend.common.dto.agent.response: the two completion result dataclasses,
with the same fields and constructors as the original."""

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class CodeCompletionResult:
    status: str
    error: str | None
    suggestions: list[str]

    @classmethod
    def success(cls, suggestion_result: dict[str, list[str]]) -> "CodeCompletionResult":
        return cls(status="finished", error=None, suggestions=suggestion_result.get("suggestions", []))

    @classmethod
    def failure(cls, error_msg: str | None = None) -> "CodeCompletionResult":
        return cls(status="failed", error=error_msg, suggestions=[])

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error, "suggestions": self.suggestions}


@dataclass
class CodeCompletionResp:
    result: CodeCompletionResult

    def as_dict(self) -> dict[str, Any]:
        return {"result": asdict(self.result)}
