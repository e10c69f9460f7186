"""Read models the client returns: a run and its steps, as stored in snapshots."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dagnats.protocol import ErrorInfo

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


class StepInfo(BaseModel):
    """One step of a run: status, attempts, output and error."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    status: str
    attempts: int = 0
    retry_count: int = 0
    output: Any = None
    error: ErrorInfo | None = None
    worker_id: str = ""
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)


class Run(BaseModel):
    """A run as the engine last saved it (timestamps are Unix seconds)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str
    workflow: str
    status: str
    reason: str = ""
    input: Any = None
    output: Any = None
    error: ErrorInfo | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    steps: dict[str, StepInfo] = Field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        """True once the run is completed, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    def public_dict(self) -> dict[str, Any]:
        """The JSON shape printed by ``--json`` and served by the API."""
        data = self.model_dump(mode="json")
        for step in data["steps"].values():
            step.pop("history", None)
        return data
