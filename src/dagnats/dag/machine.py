"""The pure engine core: fold one event into a run's state and decide actions.

``advance`` never reads the clock or does I/O: time comes from the event's
timestamp, and jitter from a hash of the attempt, so replaying the same
events always gives the same state and the same decisions (DESIGN §1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from dagnats.dag.actions import (
    Action,
    DeadLetter,
    DispatchTask,
    RecordEvent,
    SupersedeAttempt,
    Timer,
)
from dagnats.dag.model import StepDef, WorkflowDef
from dagnats.dag.retry import clamp_retry_after_ms, effective_policy, retry_delay_ns
from dagnats.dag.state import (
    AttemptRecord,
    RunState,
    RunStatus,
    StepState,
    StepStatus,
)
from dagnats.dag.state import evolve as replace
from dagnats.protocol import (
    ErrorInfo,
    Event,
    FailureKind,
    StepCompleted,
    StepDispatched,
    StepFailed,
    StepPaused,
    StepReplayed,
    StepResultIgnored,
    StepRetryDue,
    StepRetryScheduled,
    StepSkipped,
    StepStarted,
    StepTimedOut,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowTimedOut,
    format_duration,
)

DEFAULT_STEP_TIMEOUT_S = 3600.0
_WAITING = (StepStatus.RETRYING, StepStatus.PAUSED)


@dataclass(frozen=True, slots=True)
class Limits:
    """Engine-wide defaults the pure core needs."""

    default_step_timeout_s: float = DEFAULT_STEP_TIMEOUT_S


@dataclass(slots=True)
class Decision:
    """The result of folding one event: the new state and what to do."""

    state: RunState | None
    actions: list[Action] = field(default_factory=list)


def advance(
    state: RunState | None, event: Event, limits: Limits = Limits()
) -> Decision:
    """Fold ``event`` into ``state`` and return the new state and actions."""
    if isinstance(event, WorkflowStarted):
        return _on_started(state, event, limits)
    if state is None:
        return Decision(None)
    if isinstance(event, StepDispatched):
        return Decision(_on_dispatched(state, event))
    if isinstance(event, StepReplayed):
        return _on_replayed(state, event, limits)
    if state.status.is_terminal:
        return _on_terminal_run(state, event)

    decision = Decision(state)
    handler = _HANDLERS.get(type(event))
    if handler is not None:
        handler(decision, event, limits)
    return decision


def timers(state: RunState) -> list[Timer]:
    """Durable timers implied by ``state`` (deadlines and retry delays)."""
    if state.status.is_terminal:
        return []
    found: list[Timer] = []
    if state.deadline_at is not None:
        deadline = WorkflowTimedOut(run_id=state.run_id, ts=state.deadline_at)
        found.append(Timer(state.deadline_at, deadline))
    for step in state.steps.values():
        if step.status is StepStatus.RUNNING and step.deadline_at is not None:
            event = StepTimedOut(
                run_id=state.run_id,
                step_id=step.step_id,
                attempt=step.retry_count,
                ts=step.deadline_at,
            )
            found.append(Timer(step.deadline_at, event))
        elif step.status in _WAITING and step.retry_at is not None:
            due = StepRetryDue(
                run_id=state.run_id,
                step_id=step.step_id,
                attempt=_next_retry_count(step),
                ts=step.retry_at,
                dispatch=step.dispatch + 1,
            )
            found.append(Timer(step.retry_at, due))
    return found


def step_input(state: RunState, step_id: str) -> Any:
    """The input a step receives (SPEC Part B 1.9)."""
    step_def = state.workflow.step(step_id)
    own = state.steps[step_id]
    if own.recovers:
        failed = state.steps[own.recovers]
        return {"failed_step": own.recovers, "error": str(failed.error or "")}
    if not step_def.depends_on:
        return state.input
    if len(step_def.depends_on) == 1:
        return state.steps[step_def.depends_on[0]].output
    return {dep: state.steps[dep].output for dep in step_def.depends_on}


# --- workflow-level events -------------------------------------------------


def _on_started(
    state: RunState | None, event: WorkflowStarted, limits: Limits
) -> Decision:
    if state is not None:
        return Decision(state)
    try:
        defn = WorkflowDef.model_validate(event.workflow)
    except ValueError as exc:
        return _rejected_run(event, str(exc))

    deadline = event.ts + defn.timeout / 1e9 if defn.timeout > 0 else None
    run = RunState(
        run_id=event.run_id,
        workflow=defn,
        input=event.input,
        steps={s.id: StepState(step_id=s.id) for s in defn.steps},
        created_at=event.ts,
        updated_at=event.ts,
        deadline_at=deadline,
        definition=event.workflow,
    )
    decision = Decision(run)
    _dispatch_ready(decision, event.ts, limits)
    return decision


def _rejected_run(event: WorkflowStarted, message: str) -> Decision:
    defn = WorkflowDef.model_construct(
        name=str(event.workflow.get("name", "")), steps=()
    )
    error = ErrorInfo(type="InvalidWorkflow", message=message)
    run = RunState(
        run_id=event.run_id,
        workflow=defn,
        input=event.input,
        status=RunStatus.FAILED,
        error=error,
        reason="invalid_workflow",
        created_at=event.ts,
        updated_at=event.ts,
        finished_at=event.ts,
    )
    failed = WorkflowFailed(
        run_id=event.run_id, ts=event.ts, error=error, reason="invalid"
    )
    return Decision(run, [RecordEvent(failed)])


def _on_cancelled(decision: Decision, event: Event, limits: Limits) -> None:
    assert decision.state is not None
    run = decision.state
    for step in run.steps.values():
        if step.status.is_active:
            _supersede(decision, step, "run cancelled")
        if not step.status.is_terminal:
            run = run.with_step(replace(step, status=StepStatus.CANCELLED))
    reason = getattr(event, "reason", "")
    decision.state = replace(
        run,
        status=RunStatus.CANCELLED,
        reason=reason or "cancelled",
        updated_at=event.ts,
        finished_at=event.ts,
    )


def _on_workflow_timeout(decision: Decision, event: Event, limits: Limits) -> None:
    assert decision.state is not None
    run = decision.state
    if run.deadline_at is None:
        return
    limit = format_duration(run.workflow.timeout)
    error = ErrorInfo(
        type="WorkflowTimeout", message=f"workflow timeout of {limit} reached"
    )
    _fail_run(decision, event.ts, error, reason="timeout")


def _on_terminal_run(state: RunState, event: Event) -> Decision:
    if isinstance(event, StepStarted | StepCompleted | StepFailed | StepPaused):
        reason = f"run is {state.status.value}"
        return Decision(state, [RecordEvent(_ignored(event, reason))])
    return Decision(state)


# --- step events ------------------------------------------------------------


def _on_dispatched(state: RunState, event: StepDispatched) -> RunState:
    step = state.steps.get(event.step_id)
    if step is None or step.dispatch != event.dispatch or not event.task_seq:
        return state
    return state.with_step(replace(step, task_seq=event.task_seq))


def _on_step_started(decision: Decision, event: Event, limits: Limits) -> None:
    assert isinstance(event, StepStarted)
    assert decision.state is not None
    step = decision.state.steps.get(event.step_id)
    stale = _stale_reason(step, event)
    if step is None or stale:
        decision.actions.append(RecordEvent(_ignored(event, stale or "unknown step")))
        if step is not None and event.task_id:
            notice = SupersedeAttempt(
                event.step_id, event.attempt, event.task_id, 0, stale
            )
            decision.actions.append(notice)
        return
    step = _lose_leases_before(decision, step, event.attempt, event.ts)
    timeout_s = _timeout_s(decision.state.workflow.step(step.step_id), limits)
    record = AttemptRecord(
        retry_count=event.attempt, worker_id=event.worker_id, started_at=event.ts
    )
    started = replace(
        step,
        status=StepStatus.RUNNING,
        retry_count=event.attempt,
        attempts=max(step.attempts, event.attempt + 1),
        worker_id=event.worker_id,
        started_at=event.ts,
        deadline_at=event.ts + timeout_s,
    ).with_attempt(record)
    decision.state = decision.state.with_step(started)


def _on_step_completed(decision: Decision, event: Event, limits: Limits) -> None:
    assert isinstance(event, StepCompleted)
    assert decision.state is not None
    step = _applicable_step(decision, event)
    if step is None:
        return
    step = _lose_leases_before(decision, step, event.attempt, event.ts)
    record = replace(
        step.attempt_record(event.attempt),
        worker_id=event.worker_id or step.worker_id,
        ended_at=event.ts,
        outcome="completed",
    )
    done = replace(
        step,
        status=StepStatus.COMPLETED,
        retry_count=event.attempt,
        attempts=max(step.attempts, event.attempt + 1),
        output=event.output,
        error=None,
        finished_at=event.ts,
        deadline_at=None,
    ).with_attempt(record)
    decision.state = decision.state.with_step(done)
    if done.recovers:
        _recover(decision, done.recovers, event.ts)
    _dispatch_ready(decision, event.ts, limits)


def _on_step_failed(decision: Decision, event: Event, limits: Limits) -> None:
    assert isinstance(event, StepFailed)
    assert decision.state is not None
    step = _applicable_step(decision, event)
    if step is None:
        return
    step = _lose_leases_before(decision, step, event.attempt, event.ts)
    _apply_failure(decision, step, event.attempt, event, limits)


def _on_step_timed_out(decision: Decision, event: Event, limits: Limits) -> None:
    assert decision.state is not None
    step = decision.state.steps.get(event.step_id)
    if step is None or step.status is not StepStatus.RUNNING:
        return
    if step.retry_count != event.attempt:
        return
    step_def = decision.state.workflow.step(step.step_id)
    limit = format_duration(round(_timeout_s(step_def, limits) * 1e9))
    error = ErrorInfo(
        type="StepTimeout", message=f"attempt exceeded its timeout of {limit}"
    )
    failure = StepFailed(
        run_id=event.run_id,
        step_id=event.step_id,
        attempt=event.attempt,
        ts=event.ts,
        error=error,
        failure=FailureKind.TIMEOUT,
    )
    _supersede(decision, step, "deadline reached")
    _apply_failure(decision, step, event.attempt, failure, limits)


def _on_retry_due(decision: Decision, event: Event, limits: Limits) -> None:
    assert decision.state is not None
    step = decision.state.steps.get(event.step_id)
    if step is None or step.status not in (StepStatus.RETRYING, StepStatus.PAUSED):
        return
    if _next_retry_count(step) != event.attempt:
        return
    _dispatch(decision, step, event.attempt, event.ts, limits)


def _next_retry_count(step: StepState) -> int:
    """A pause resumes at the same count (SPEC Part A 22); a retry adds one."""
    return (
        step.retry_count if step.status is StepStatus.PAUSED else step.retry_count + 1
    )


def _on_step_paused(decision: Decision, event: Event, limits: Limits) -> None:
    assert isinstance(event, StepPaused)
    assert decision.state is not None
    step = _applicable_step(decision, event)
    if step is None:
        return
    record = replace(
        step.attempt_record(event.attempt), ended_at=event.ts, outcome="paused"
    )
    paused = replace(
        step,
        status=StepStatus.PAUSED,
        retry_at=max(event.resume_at, event.ts),
        deadline_at=None,
        paused_as=event.name,
    ).with_attempt(record)
    decision.state = decision.state.with_step(paused)


def _on_replayed(state: RunState, event: StepReplayed, limits: Limits) -> Decision:
    """Revive a failed run at its failed step with a fresh retry budget."""
    step = state.steps.get(event.step_id)
    if state.status is not RunStatus.FAILED or step is None:
        reason = f"run is {state.status.value}; only a failed run can be replayed"
        return Decision(state, [RecordEvent(_ignored(event, reason))])
    if step.status is not StepStatus.FAILED:
        reason = f"step is {step.status.value}; only a failed step can be replayed"
        return Decision(state, [RecordEvent(_ignored(event, reason))])
    if event.dead_letter_seq in step.replayed:
        reason = f"dead letter {event.dead_letter_seq} was already replayed"
        return Decision(state, [RecordEvent(_ignored(event, reason))])

    run = replace(
        state, status=RunStatus.RUNNING, error=None, reason="", finished_at=None
    )
    for other in run.steps.values():
        if other.status is StepStatus.CANCELLED:
            run = run.with_step(replace(other, status=StepStatus.PENDING))
    decision = Decision(run)
    fresh = replace(
        step,
        budget_base=step.attempts,
        error=None,
        finished_at=None,
        replayed=(*step.replayed, event.dead_letter_seq),
    )
    _dispatch(decision, fresh, step.attempts, event.ts, limits)
    _dispatch_ready(decision, event.ts, limits)
    return decision


_HANDLERS = {
    StepStarted: _on_step_started,
    StepCompleted: _on_step_completed,
    StepFailed: _on_step_failed,
    StepTimedOut: _on_step_timed_out,
    StepPaused: _on_step_paused,
    StepRetryDue: _on_retry_due,
    WorkflowCancelled: _on_cancelled,
    WorkflowTimedOut: _on_workflow_timeout,
}


# --- failure handling -------------------------------------------------------


def _apply_failure(
    decision: Decision, step: StepState, attempt: int, event: StepFailed, limits: Limits
) -> None:
    assert decision.state is not None
    run = decision.state
    record = replace(
        step.attempt_record(attempt),
        ended_at=event.ts,
        outcome=event.failure.value,
        error=event.error,
        worker_id=event.worker_id or step.attempt_record(attempt).worker_id,
    )
    step = replace(
        step,
        retry_count=attempt,
        attempts=max(step.attempts, attempt + 1),
        error=event.error,
        deadline_at=None,
    ).with_attempt(record)

    delay_ns = _retry_delay_ns(run, step, attempt, event)
    if delay_ns is None:
        _fail_step(decision, step, event, limits)
        return
    due_at = event.ts + delay_ns / 1e9
    waiting = replace(step, status=StepStatus.RETRYING, retry_at=due_at)
    decision.state = run.with_step(waiting)
    scheduled = StepRetryScheduled(
        run_id=run.run_id,
        step_id=step.step_id,
        attempt=attempt + 1,
        ts=event.ts,
        due_at=due_at,
        error=event.error,
    )
    decision.actions.append(RecordEvent(scheduled))
    if delay_ns == 0:
        _dispatch(decision, waiting, attempt + 1, event.ts, limits)


def _retry_delay_ns(
    run: RunState, step: StepState, attempt: int, event: StepFailed
) -> int | None:
    """Nanoseconds until the next attempt, or None when no retry is left."""
    if event.failure is FailureKind.PERMANENT:
        return None
    policy = effective_policy(run.workflow, run.workflow.step(step.step_id))
    budget = (
        policy.lease_retries
        if event.failure is FailureKind.LEASE_LOST
        else policy.max_retries
    )
    retry_number = attempt + 1 - step.budget_base
    if retry_number > budget:
        return None
    if event.failure is FailureKind.LEASE_LOST:
        return 0
    if event.failure is FailureKind.RETRY_AFTER and event.retry_after_ms is not None:
        return clamp_retry_after_ms(event.retry_after_ms) * 1_000_000
    if policy.policy is None:
        return None
    unit = _jitter_unit(run.run_id, step.step_id, attempt)
    return retry_delay_ns(policy.policy, retry_number, unit)


def _fail_step(
    decision: Decision, step: StepState, event: StepFailed, limits: Limits
) -> None:
    assert decision.state is not None
    run = decision.state
    failed = replace(
        step, status=StepStatus.FAILED, finished_at=event.ts, retry_at=None
    )
    decision.state = run.with_step(failed)
    step_def = run.workflow.step(step.step_id)
    decision.actions.append(
        DeadLetter(
            step_id=step.step_id,
            task=step_def.task,
            input=step_input(run, step.step_id),
            retry_count=failed.retry_count,
            error=event.error,
        )
    )
    target = step_def.on_failure
    if target and not step.recovers and target in run.steps:
        target_state = decision.state.steps[target]
        if target_state.status is StepStatus.PENDING:
            recovering = replace(target_state, recovers=step.step_id)
            decision.state = decision.state.with_step(recovering)
            _dispatch(decision, recovering, 0, event.ts, limits)
            return
    _fail_run(
        decision, event.ts, event.error, reason="step_failed", step_id=step.step_id
    )


def _recover(decision: Decision, failed_id: str, ts: float) -> None:
    assert decision.state is not None
    run = decision.state
    run = run.with_step(replace(run.steps[failed_id], status=StepStatus.RECOVERED))
    for dependent in run.workflow.dependents(failed_id):
        dep_state = run.steps[dependent]
        if dep_state.status is not StepStatus.PENDING:
            continue
        run = run.with_step(
            replace(dep_state, status=StepStatus.SKIPPED, finished_at=ts)
        )
        skipped = StepSkipped(
            run_id=run.run_id, step_id=dependent, ts=ts, reason=f"{failed_id} recovered"
        )
        decision.actions.append(RecordEvent(skipped))
    decision.state = run


def _fail_run(
    decision: Decision, ts: float, error: ErrorInfo, *, reason: str, step_id: str = ""
) -> None:
    assert decision.state is not None
    run = decision.state
    for step in run.steps.values():
        if step.status.is_active:
            _supersede(decision, step, "run failed")
            run = run.with_step(replace(step, status=StepStatus.CANCELLED))
    message = f"step {step_id!r} failed: {error.message}" if step_id else error.message
    run_error = ErrorInfo(type=error.type, message=message, traceback=error.traceback)
    decision.state = replace(
        run,
        status=RunStatus.FAILED,
        error=run_error,
        reason=reason,
        updated_at=ts,
        finished_at=ts,
    )
    failed = WorkflowFailed(run_id=run.run_id, ts=ts, error=run_error, reason=reason)
    decision.actions.append(RecordEvent(failed))


def _supersede(decision: Decision, step: StepState, reason: str) -> None:
    if step.status not in (StepStatus.QUEUED, StepStatus.RUNNING):
        return
    assert decision.state is not None
    task_id = f"{decision.state.run_id}:{step.dispatch}:{step.step_id}"
    decision.actions.append(
        SupersedeAttempt(step.step_id, step.retry_count, task_id, step.task_seq, reason)
    )


# --- dispatch and completion ------------------------------------------------


def _dispatch_ready(decision: Decision, ts: float, limits: Limits) -> None:
    assert decision.state is not None
    run = decision.state
    aux = run.workflow.aux_steps
    for step_def in run.workflow.steps:
        step = run.steps[step_def.id]
        if step.status is not StepStatus.PENDING or aux.get(step_def.id):
            continue
        if all(run.steps[dep].status.is_satisfied for dep in step_def.depends_on):
            _dispatch(decision, step, step.attempts, ts, limits)
            run = decision.state
    _finish_if_done(decision, ts)


def _dispatch(
    decision: Decision, step: StepState, retry_count: int, ts: float, limits: Limits
) -> None:
    assert decision.state is not None
    run = decision.state
    step_def = run.workflow.step(step.step_id)
    policy = effective_policy(run.workflow, step_def)
    resumed_from = step.paused_as if step.status is StepStatus.PAUSED else ""
    queued = replace(
        step,
        status=StepStatus.QUEUED,
        retry_count=retry_count,
        attempts=max(step.attempts, retry_count + 1),
        dispatch=step.dispatch + 1,
        task_seq=0,
        paused_as="",
        queued_at=ts,
        retry_at=None,
        deadline_at=None,
    )
    decision.state = run.with_step(queued)
    decision.actions.append(
        DispatchTask(
            step_id=step.step_id,
            task=step_def.task,
            input=step_input(decision.state, step.step_id),
            retry_count=retry_count,
            max_retry_count=max(retry_count, step.budget_base + policy.lease_retries),
            timeout_s=_timeout_s(step_def, limits),
            dispatch=queued.dispatch,
            resumed_from=resumed_from,
            metadata=step_def.metadata,
        )
    )


def _finish_if_done(decision: Decision, ts: float) -> None:
    assert decision.state is not None
    run = decision.state
    if run.status.is_terminal:
        return
    main_steps = [s for s in run.workflow.steps if not run.workflow.aux_steps.get(s.id)]
    if all(run.steps[s.id].status.is_satisfied for s in main_steps):
        output = _run_output(run)
        decision.state = replace(
            run,
            status=RunStatus.COMPLETED,
            output=output,
            updated_at=ts,
            finished_at=ts,
        )
        done = WorkflowCompleted(run_id=run.run_id, ts=ts, output=output)
        decision.actions.append(RecordEvent(done))
        return
    if not any(step.status.is_active for step in run.steps.values()):
        error = ErrorInfo(
            type="Wedged", message="no step can run and the run is not done"
        )
        _fail_run(decision, ts, error, reason="wedged")


def _run_output(run: RunState) -> Any:
    sinks = run.workflow.sink_steps()
    if len(sinks) == 1:
        return run.steps[sinks[0]].output
    return {sink: run.steps[sink].output for sink in sinks}


# --- small helpers ------------------------------------------------------------


_WorkerEvent = StepStarted | StepCompleted | StepFailed | StepPaused


def _stale_reason(step: StepState | None, event: _WorkerEvent) -> str:
    """Why a worker event must not be applied, or '' when it applies."""
    if step is None:
        return "unknown step"
    if step.status.is_terminal:
        return f"step already {step.status.value}"
    if event.attempt < step.retry_count:
        return f"attempt {event.attempt} superseded by attempt {step.retry_count}"
    if step.status is StepStatus.RETRYING:
        return f"attempt {event.attempt} already failed; a retry is scheduled"
    if step.status is StepStatus.PAUSED:
        return "step is paused; it resumes with a new dispatch"
    if step.status is StepStatus.PENDING:
        return "step was not dispatched"
    if event.task_id and not _same_task(step, event.task_id):
        return "task message superseded by a newer dispatch"
    return ""


def _applicable_step(decision: Decision, event: _WorkerEvent) -> StepState | None:
    """The event's step, or None (recorded as ignored) when it must not apply."""
    assert decision.state is not None
    step = decision.state.steps.get(event.step_id)
    stale = _stale_reason(step, event)
    if step is None or stale:
        decision.actions.append(RecordEvent(_ignored(event, stale or "unknown step")))
        return None
    return step


def _same_task(step: StepState, task_id: str) -> bool:
    dispatch, _, _ = task_id.partition(":")[2].partition(":")
    return not dispatch.isdigit() or int(dispatch) == step.dispatch


def _lose_leases_before(
    decision: Decision, step: StepState, attempt: int, ts: float
) -> StepState:
    """Attempts between the current one and ``attempt`` lost their lease."""
    if step.status is StepStatus.RUNNING and attempt > step.retry_count:
        # A redelivery: whoever still runs the earlier attempt must stop
        # (its message is the one now redelivered, so it is not deleted).
        assert decision.state is not None
        task_id = f"{decision.state.run_id}:{step.dispatch}:{step.step_id}"
        reason = "lease expired; the task was redelivered"
        notice = SupersedeAttempt(step.step_id, step.retry_count, task_id, 0, reason)
        decision.actions.append(notice)
    lost = step
    for count in range(step.retry_count, attempt):
        record = lost.attempt_record(count)
        if record.outcome != "running":
            continue
        error = ErrorInfo(type="LeaseLost", message="lease expired; task redelivered")
        outcome = FailureKind.LEASE_LOST.value
        lost = lost.with_attempt(
            replace(record, ended_at=ts, outcome=outcome, error=error)
        )
    return lost


def _timeout_s(step_def: StepDef, limits: Limits) -> float:
    return (
        step_def.timeout / 1e9
        if step_def.timeout > 0
        else limits.default_step_timeout_s
    )


def _jitter_unit(run_id: str, step_id: str, attempt: int) -> float:
    digest = hashlib.sha256(f"{run_id}\x00{step_id}\x00{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _ignored(event: _WorkerEvent | StepReplayed, reason: str) -> StepResultIgnored:
    return StepResultIgnored(
        run_id=event.run_id,
        step_id=event.step_id,
        attempt=event.attempt,
        ts=event.ts,
        worker_id=event.worker_id,
        ignored=event.type.value,
        reason=reason,
        source=hashlib.sha256(event.model_dump_json().encode()).hexdigest()[:16],
    )
