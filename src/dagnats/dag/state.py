"""Run and step state: the values the engine folds events into."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from dagnats.dag.model import WorkflowDef
from dagnats.protocol import ErrorInfo

T = TypeVar("T")


def evolve(obj: T, **changes: Any) -> T:
    """A copy of the frozen, slotted dataclass ``obj`` with ``changes``.

    ``dataclasses.replace`` re-inspects the fields on every call; the engine
    makes several copies per event, so this direct slot copy matters.
    """
    new = object.__new__(type(obj))
    for name in type(obj).__slots__:  # type: ignore[attr-defined]
        value = changes[name] if name in changes else getattr(obj, name)
        object.__setattr__(new, name, value)
    return new


class RunStatus(StrEnum):
    """Lifecycle of a run."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """True once the run can change no more."""
        return self in _TERMINAL_RUN


_TERMINAL_RUN = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


class StepStatus(StrEnum):
    """Lifecycle of a step; ``retrying`` waits for a durable retry timer."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    RECOVERED = "recovered"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """True once the step can change no more."""
        return self in _TERMINAL_STEP

    @property
    def is_satisfied(self) -> bool:
        """True when dependents may run."""
        return self in _SATISFIED_STEP

    @property
    def is_active(self) -> bool:
        """True while an attempt is dispatched, running or waiting to retry."""
        return self in _ACTIVE_STEP


_TERMINAL_STEP = frozenset(
    {
        StepStatus.COMPLETED,
        StepStatus.FAILED,
        StepStatus.SKIPPED,
        StepStatus.RECOVERED,
        StepStatus.CANCELLED,
    }
)
_SATISFIED_STEP = frozenset(
    {StepStatus.COMPLETED, StepStatus.SKIPPED, StepStatus.RECOVERED}
)
_ACTIVE_STEP = frozenset(
    {StepStatus.QUEUED, StepStatus.RUNNING, StepStatus.RETRYING, StepStatus.PAUSED}
)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """What happened to one attempt of a step."""

    retry_count: int
    worker_id: str = ""
    started_at: float | None = None
    ended_at: float | None = None
    outcome: str = "running"
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class StepState:
    """The state of one step of a run.

    ``retry_count`` is the count of the current (or last) attempt;
    ``attempts`` is how many attempts were dispatched or started;
    ``dispatch`` numbers the task messages sent for the step (a pause or a
    replay sends a new one); ``budget_base`` is the retry count from which
    the retry budget is counted (raised by a dead-letter replay).
    """

    step_id: str
    status: StepStatus = StepStatus.PENDING
    retry_count: int = 0
    attempts: int = 0
    dispatch: int = 0
    budget_base: int = 0
    task_seq: int = 0
    paused_as: str = ""
    replayed: tuple[int, ...] = ()
    output: Any = None
    error: ErrorInfo | None = None
    worker_id: str = ""
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    deadline_at: float | None = None
    retry_at: float | None = None
    recovers: str = ""
    history: tuple[AttemptRecord, ...] = ()

    def with_attempt(self, record: AttemptRecord) -> StepState:
        """Replace the record of ``record.retry_count`` or append it."""
        kept = tuple(r for r in self.history if r.retry_count != record.retry_count)
        ordered = sorted((*kept, record), key=lambda r: r.retry_count)
        return evolve(self, history=tuple(ordered))

    def attempt_record(self, retry_count: int) -> AttemptRecord:
        """The record of ``retry_count`` (a fresh one if absent)."""
        for record in self.history:
            if record.retry_count == retry_count:
                return record
        return AttemptRecord(retry_count=retry_count)


@dataclass(frozen=True, slots=True)
class RunState:
    """The state of one run, rebuilt by folding its events."""

    run_id: str
    workflow: WorkflowDef
    input: Any = None
    status: RunStatus = RunStatus.RUNNING
    steps: dict[str, StepState] = field(default_factory=dict)
    output: Any = None
    error: ErrorInfo | None = None
    reason: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    deadline_at: float | None = None
    last_seq: int = 0
    # The pinned definition as it was written in workflow.started: kept to
    # write snapshots without re-serialising the model on every save.
    definition: dict[str, Any] = field(default_factory=dict, compare=False)

    def step(self, step_id: str) -> StepState:
        """The state of ``step_id``."""
        return self.steps[step_id]

    def with_step(self, step: StepState) -> RunState:
        """A copy with ``step`` replaced."""
        steps = dict(self.steps)
        steps[step.step_id] = step
        return evolve(self, steps=steps)
