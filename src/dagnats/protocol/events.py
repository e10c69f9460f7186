"""Events of a run's history: the immutable log the engine replays.

*Input* events come from outside the engine's decisions (a client starts or
cancels a run, a worker reports an attempt, a durable timer fires); *record*
events write down what the engine decided, so the log shows it and a replay
sees it. Every event has a deterministic ``Nats-Msg-Id`` (DESIGN §3.1).
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from dagnats.protocol.subjects import encode_token


class EventKind(StrEnum):
    """The type of an event (its ``type`` field on the wire)."""

    WORKFLOW_STARTED = "workflow.started"
    WORKFLOW_COMPLETED = "workflow.completed"
    WORKFLOW_FAILED = "workflow.failed"
    WORKFLOW_CANCELLED = "workflow.cancelled"
    WORKFLOW_TIMED_OUT = "workflow.timed_out"
    STEP_DISPATCHED = "step.dispatched"
    STEP_STARTED = "step.started"
    STEP_COMPLETED = "step.completed"
    STEP_FAILED = "step.failed"
    STEP_TIMED_OUT = "step.timed_out"
    STEP_RETRY_SCHEDULED = "step.retry_scheduled"
    STEP_RETRY_DUE = "step.retry_due"
    STEP_SKIPPED = "step.skipped"
    STEP_PAUSED = "step.paused"
    STEP_REPLAYED = "step.replayed"
    STEP_DEAD_LETTERED = "step.dead_lettered"
    STEP_RESULT_IGNORED = "step.result_ignored"


class FailureKind(StrEnum):
    """How a failed attempt should be treated."""

    RETRIABLE = "retriable"
    PERMANENT = "permanent"
    RETRY_AFTER = "retry_after"
    LEASE_LOST = "lease_lost"
    TIMEOUT = "timeout"


class ErrorInfo(BaseModel):
    """An error as recorded in events: exception type, message, traceback."""

    model_config = ConfigDict(frozen=True)

    type: str = "Error"
    message: str = ""
    traceback: str = ""

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


class _EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str
    step_id: str = ""
    attempt: int = 0
    ts: float = Field(default_factory=time.time)
    worker_id: str = ""

    @property
    def msg_id(self) -> str:
        """The ``Nats-Msg-Id`` that makes a repeated publish a no-op."""
        kind = getattr(self, "type")  # noqa: B009 - declared by each subclass
        if not self.step_id:
            return f"{self.run_id}.{kind}"
        base = f"{self.run_id}.{encode_token(self.step_id)}.{self.attempt}.{kind}"
        # A step can be dispatched several times at one attempt (pause, replay).
        dispatch = getattr(self, "dispatch", 0)
        return f"{base}.{dispatch}" if dispatch else base


class WorkflowStarted(_EventBase):
    """A run was accepted; carries the definition it is pinned to."""

    type: Literal[EventKind.WORKFLOW_STARTED] = EventKind.WORKFLOW_STARTED
    workflow: dict[str, Any]
    input: Any = None


class WorkflowCompleted(_EventBase):
    """Record: the run completed with ``output``."""

    type: Literal[EventKind.WORKFLOW_COMPLETED] = EventKind.WORKFLOW_COMPLETED
    output: Any = None


class WorkflowFailed(_EventBase):
    """Record: the run failed; ``reason`` is ``step_failed`` or ``timeout``."""

    type: Literal[EventKind.WORKFLOW_FAILED] = EventKind.WORKFLOW_FAILED
    error: ErrorInfo
    reason: str = "step_failed"


class WorkflowCancelled(_EventBase):
    """A cancellation request (input) that also stands as the record."""

    type: Literal[EventKind.WORKFLOW_CANCELLED] = EventKind.WORKFLOW_CANCELLED
    reason: str = ""


class WorkflowTimedOut(_EventBase):
    """Timer input: the run's deadline passed."""

    type: Literal[EventKind.WORKFLOW_TIMED_OUT] = EventKind.WORKFLOW_TIMED_OUT


class StepDispatched(_EventBase):
    """Record: a task for ``attempt`` was published (``task_seq`` in TASK_QUEUES)."""

    type: Literal[EventKind.STEP_DISPATCHED] = EventKind.STEP_DISPATCHED
    task: str = ""
    task_seq: int = 0
    dispatch: int = 0


class StepStarted(_EventBase):
    """A worker began executing ``attempt`` of the step."""

    type: Literal[EventKind.STEP_STARTED] = EventKind.STEP_STARTED
    task_id: str = ""


class StepCompleted(_EventBase):
    """A worker finished ``attempt`` with ``output`` (any JSON value)."""

    type: Literal[EventKind.STEP_COMPLETED] = EventKind.STEP_COMPLETED
    task_id: str = ""
    output: Any = None


class StepFailed(_EventBase):
    """A worker (or the engine) reports ``attempt`` failed."""

    type: Literal[EventKind.STEP_FAILED] = EventKind.STEP_FAILED
    task_id: str = ""
    error: ErrorInfo
    failure: FailureKind = FailureKind.RETRIABLE
    retry_after_ms: int | None = None


class StepTimedOut(_EventBase):
    """Timer input: ``attempt`` reached its deadline."""

    type: Literal[EventKind.STEP_TIMED_OUT] = EventKind.STEP_TIMED_OUT


class StepRetryScheduled(_EventBase):
    """Record: ``attempt`` (the next one) will be dispatched at ``due_at``."""

    type: Literal[EventKind.STEP_RETRY_SCHEDULED] = EventKind.STEP_RETRY_SCHEDULED
    due_at: float
    error: ErrorInfo | None = None


class StepRetryDue(_EventBase):
    """Timer input: the retry for ``attempt`` is due."""

    type: Literal[EventKind.STEP_RETRY_DUE] = EventKind.STEP_RETRY_DUE
    dispatch: int = 0


class StepPaused(_EventBase):
    """A handler deferred itself until ``resume_at`` (not a failure)."""

    type: Literal[EventKind.STEP_PAUSED] = EventKind.STEP_PAUSED
    task_id: str = ""
    dispatch: int = 0
    name: str = ""
    resume_at: float


class StepReplayed(_EventBase):
    """An operator replays the dead letter ``dead_letter_seq`` of a failed step."""

    type: Literal[EventKind.STEP_REPLAYED] = EventKind.STEP_REPLAYED
    dead_letter_seq: int = 0

    @property
    def msg_id(self) -> str:
        """One replay per dead letter: a second one is dropped."""
        return (
            f"{self.run_id}.{encode_token(self.step_id)}.replay.{self.dead_letter_seq}"
        )


class StepSkipped(_EventBase):
    """Record: the step will not run (``reason`` says why)."""

    type: Literal[EventKind.STEP_SKIPPED] = EventKind.STEP_SKIPPED
    reason: str = ""


class StepDeadLettered(_EventBase):
    """Record: the step's last attempt failed and a dead letter was written."""

    type: Literal[EventKind.STEP_DEAD_LETTERED] = EventKind.STEP_DEAD_LETTERED
    error: ErrorInfo
    dead_letter_seq: int = 0


class StepResultIgnored(_EventBase):
    """Record: a late, stale or duplicate result was seen and not applied."""

    type: Literal[EventKind.STEP_RESULT_IGNORED] = EventKind.STEP_RESULT_IGNORED
    ignored: str
    reason: str
    source: str = ""

    @property
    def msg_id(self) -> str:
        """One record per distinct ignored event (``source`` is its digest)."""
        return f"{super().msg_id}.{self.ignored}.{self.source}"


Event = Annotated[
    WorkflowStarted
    | WorkflowCompleted
    | WorkflowFailed
    | WorkflowCancelled
    | WorkflowTimedOut
    | StepDispatched
    | StepStarted
    | StepCompleted
    | StepFailed
    | StepTimedOut
    | StepRetryScheduled
    | StepRetryDue
    | StepPaused
    | StepReplayed
    | StepSkipped
    | StepDeadLettered
    | StepResultIgnored,
    Field(discriminator="type"),
]

_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

KIND_HEADER = "Dagnats-Kind"

# Records that never change a run's state when folded: the engine (and its
# start-up replay) may skip them unread, since they only document decisions.
NO_OP_RECORDS = frozenset(
    {
        EventKind.WORKFLOW_COMPLETED,
        EventKind.WORKFLOW_FAILED,
        EventKind.STEP_RETRY_SCHEDULED,
        EventKind.STEP_SKIPPED,
        EventKind.STEP_DEAD_LETTERED,
        EventKind.STEP_RESULT_IGNORED,
    }
)


def decode_event(data: bytes | str) -> Event:
    """Parse one event from its JSON encoding.

    Raises:
        pydantic.ValidationError: the data is not a known event.
    """
    return _EVENT_ADAPTER.validate_json(data)


def encode_event(event: _EventBase) -> bytes:
    """The JSON encoding of ``event``."""
    return event.model_dump_json().encode()
