"""Actions: what the engine must do after folding one event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagnats.protocol import ErrorInfo, Event


@dataclass(frozen=True, slots=True)
class DispatchTask:
    """Publish a task for one attempt, then record ``step.dispatched``."""

    step_id: str
    task: str
    input: Any
    retry_count: int
    max_retry_count: int
    timeout_s: float
    dispatch: int
    resumed_from: str = ""
    metadata: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class RecordEvent:
    """Append a record event (the engine's decision) to the run's history."""

    event: Event


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Write the dead letter of a step whose last attempt failed."""

    step_id: str
    task: str
    input: Any
    retry_count: int
    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class SupersedeAttempt:
    """Tell the worker running ``retry_count`` to stop; drop its task message."""

    step_id: str
    retry_count: int
    task_id: str
    task_seq: int
    reason: str


Action = DispatchTask | RecordEvent | DeadLetter | SupersedeAttempt


@dataclass(frozen=True, slots=True)
class Timer:
    """A durable timer derived from state: when due, ``event`` is published."""

    fire_at: float
    event: Event

    @property
    def key(self) -> str:
        """Identity of the timer (its event's message id)."""
        return self.event.msg_id
