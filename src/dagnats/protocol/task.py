"""The task message a worker receives, and headers shared on the wire."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

MSG_ID_HEADER = "Nats-Msg-Id"


class TaskPayload(BaseModel):
    """One dispatch of a step to a worker.

    ``retry_count`` is the count at dispatch; a NATS redelivery of the same
    message adds its extra deliveries to it. ``max_retry_count`` is the last
    count this message may run at: a delivery beyond it is reported as a
    lost lease instead of run (MaxDeliver is derived from the retry policy).
    """

    model_config = ConfigDict(frozen=True)

    run_id: str
    step_id: str
    task: str
    workflow: str
    input: Any = None
    retry_count: int = 0
    max_retry_count: int = 0
    timeout_s: float = 3600.0
    dispatch: int = 1
    resumed_from: str = ""
    dispatched_at: float = 0.0
    metadata: dict[str, str] | None = None

    @property
    def task_id(self) -> str:
        """Identity of this dispatch of the step (run, dispatch number, step)."""
        return f"{self.run_id}:{self.dispatch}:{self.step_id}"
