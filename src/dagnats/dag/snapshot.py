"""Run snapshots: the JSON form of a run's state kept in KV for fast reads.

The snapshot is a cache (DESIGN §1); the history stream stays the truth.
Its top-level keys are the public shape of a run (CLI ``--json``, API).
"""

from __future__ import annotations

from typing import Any

from dagnats.dag.model import WorkflowDef
from dagnats.dag.state import AttemptRecord, RunState, RunStatus, StepState, StepStatus
from dagnats.protocol import ErrorInfo


def run_to_dict(run: RunState, *, with_definition: bool = True) -> dict[str, Any]:
    """The snapshot of ``run`` as plain JSON-able data."""
    data: dict[str, Any] = {
        "run_id": run.run_id,
        "workflow": run.workflow.name,
        "status": run.status.value,
        "reason": run.reason,
        "input": run.input,
        "output": run.output,
        "error": _error_dict(run.error),
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "finished_at": run.finished_at,
        "deadline_at": run.deadline_at,
        "steps": {sid: _step_dict(step) for sid, step in run.steps.items()},
        "last_seq": run.last_seq,
    }
    if with_definition:
        data["definition"] = run.definition or run.workflow.to_json_dict()
    return data


def run_from_dict(data: dict[str, Any]) -> RunState:
    """Rebuild a :class:`RunState` from :func:`run_to_dict` output."""
    defn = WorkflowDef.model_validate(data["definition"])
    return RunState(
        run_id=data["run_id"],
        workflow=defn,
        input=data.get("input"),
        status=RunStatus(data["status"]),
        steps={sid: _step_from(sid, s) for sid, s in data["steps"].items()},
        output=data.get("output"),
        error=_error_from(data.get("error")),
        reason=data.get("reason", ""),
        created_at=data.get("created_at", 0.0),
        updated_at=data.get("updated_at", 0.0),
        finished_at=data.get("finished_at"),
        deadline_at=data.get("deadline_at"),
        last_seq=data.get("last_seq", 0),
        definition=data["definition"],
    )


def _step_dict(step: StepState) -> dict[str, Any]:
    return {
        "status": step.status.value,
        "attempts": step.attempts,
        "retry_count": step.retry_count,
        "output": step.output,
        "error": _error_dict(step.error),
        "worker_id": step.worker_id,
        "queued_at": step.queued_at,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "deadline_at": step.deadline_at,
        "retry_at": step.retry_at,
        "dispatch": step.dispatch,
        "budget_base": step.budget_base,
        "task_seq": step.task_seq,
        "paused_as": step.paused_as,
        "replayed": list(step.replayed),
        "recovers": step.recovers,
        "history": [_attempt_dict(r) for r in step.history],
    }


def _step_from(step_id: str, data: dict[str, Any]) -> StepState:
    return StepState(
        step_id=step_id,
        status=StepStatus(data["status"]),
        retry_count=data.get("retry_count", 0),
        attempts=data.get("attempts", 0),
        dispatch=data.get("dispatch", 0),
        budget_base=data.get("budget_base", 0),
        task_seq=data.get("task_seq", 0),
        paused_as=data.get("paused_as", ""),
        replayed=tuple(data.get("replayed", ())),
        output=data.get("output"),
        error=_error_from(data.get("error")),
        worker_id=data.get("worker_id", ""),
        queued_at=data.get("queued_at"),
        started_at=data.get("started_at"),
        finished_at=data.get("finished_at"),
        deadline_at=data.get("deadline_at"),
        retry_at=data.get("retry_at"),
        recovers=data.get("recovers", ""),
        history=tuple(_attempt_from(r) for r in data.get("history", [])),
    )


def _attempt_dict(record: AttemptRecord) -> dict[str, Any]:
    return {
        "retry_count": record.retry_count,
        "worker_id": record.worker_id,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "outcome": record.outcome,
        "error": _error_dict(record.error),
    }


def _attempt_from(data: dict[str, Any]) -> AttemptRecord:
    return AttemptRecord(
        retry_count=data["retry_count"],
        worker_id=data.get("worker_id", ""),
        started_at=data.get("started_at"),
        ended_at=data.get("ended_at"),
        outcome=data.get("outcome", "running"),
        error=_error_from(data.get("error")),
    )


def _error_dict(error: ErrorInfo | None) -> dict[str, str] | None:
    return error.model_dump() if error is not None else None


def _error_from(data: dict[str, Any] | None) -> ErrorInfo | None:
    return ErrorInfo.model_validate(data) if data else None
