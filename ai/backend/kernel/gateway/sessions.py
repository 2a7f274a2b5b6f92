"""In-memory Jupyter sessions (notebook path ⇄ kernel), as far as JupyterLab and KG clients use them.

jupyter_server in gateway mode keeps its own sessions and only calls /api/kernels; this store serves
clients that talk to /api/sessions directly. Rows die with their kernel.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass
class SessionRow:
    id: str
    path: str
    name: str
    type: str
    kernel_id: str

    def model(self, kernel: dict) -> dict:
        """jupyter_server's shape plus Kernel Gateway's legacy `notebook` key."""
        return {
            "id": self.id, "path": self.path, "name": self.name, "type": self.type,
            "kernel": kernel, "notebook": {"path": self.path, "name": self.name},
        }


class SessionStore:
    def __init__(self) -> None:
        self._rows: dict[str, SessionRow] = {}

    def create(self, path: str, name: str, type_: str, kernel_id: str) -> SessionRow:
        row = SessionRow(str(uuid.uuid4()), path, name, type_, kernel_id)
        self._rows[row.id] = row
        return row

    def get(self, session_id: str) -> SessionRow | None:
        return self._rows.get(session_id)

    def find(self, path: str) -> SessionRow | None:
        return next((r for r in self._rows.values() if path and r.path == path), None)

    def rows(self) -> list[SessionRow]:
        return list(self._rows.values())

    def delete(self, session_id: str) -> SessionRow | None:
        return self._rows.pop(session_id, None)

    def drop_kernel(self, kernel_id: str) -> None:
        for sid in [s for s, r in self._rows.items() if r.kernel_id == kernel_id]:
            del self._rows[sid]
