"""Unit tests of the pure engine core (dagnats.dag.machine)."""

from __future__ import annotations

from typing import Any

from dagnats.dag import (
    DeadLetter,
    DispatchTask,
    RecordEvent,
    RunState,
    RunStatus,
    StepStatus,
    SupersedeAttempt,
    Workflow,
    WorkflowDef,
    advance,
    parse_workflow,
    timers,
)
from dagnats.protocol import (
    ErrorInfo,
    FailureKind,
    StepCompleted,
    StepFailed,
    StepResultIgnored,
    StepRetryDue,
    StepStarted,
    StepTimedOut,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowTimedOut,
)

RUN = "0123456789abcdef0123456789abcdef"


def _start(
    defn: WorkflowDef, value: Any = None, ts: float = 1000.0
) -> tuple[RunState, list]:
    decision = advance(
        None,
        WorkflowStarted(run_id=RUN, workflow=defn.to_json_dict(), input=value, ts=ts),
    )
    assert decision.state is not None
    return decision.state, decision.actions


def _dispatched(actions: list) -> list[DispatchTask]:
    return [a for a in actions if isinstance(a, DispatchTask)]


def _records(actions: list, kind: type) -> list:
    return [
        a.event
        for a in actions
        if isinstance(a, RecordEvent) and isinstance(a.event, kind)
    ]


def _complete(
    state: RunState, step: str, output: Any, attempt: int = 0, ts: float = 1001.0
):
    decision = advance(
        state,
        StepCompleted(run_id=RUN, step_id=step, attempt=attempt, output=output, ts=ts),
    )
    assert decision.state is not None
    return decision.state, decision.actions


def _fail(
    state: RunState,
    step: str,
    attempt: int = 0,
    failure=FailureKind.RETRIABLE,
    ts=1001.0,
    **kw,
):
    event = StepFailed(
        run_id=RUN,
        step_id=step,
        attempt=attempt,
        error=ErrorInfo(type="Boom", message="x"),
        failure=failure,
        ts=ts,
        **kw,
    )
    decision = advance(state, event)
    assert decision.state is not None
    return decision.state, decision.actions


def _diamond() -> WorkflowDef:
    return (
        Workflow("diamond")
        .task("a", "t")
        .task("b", "t", depends_on=["a"])
        .task("c", "t", depends_on=["a"])
        .task("d", "t", depends_on=["b", "c"])
        .build()
    )


def test_entry_steps_get_the_run_input():
    state, actions = _start(_diamond(), {"x": 1})
    [task] = _dispatched(actions)
    assert (task.step_id, task.input, task.retry_count) == ("a", {"x": 1}, 0)
    assert state.steps["a"].status is StepStatus.QUEUED


def test_one_dependency_passes_its_output_and_fan_in_gets_an_object():
    state, _ = _start(_diamond())
    state, actions = _complete(state, "a", "A")
    assert sorted((t.step_id, t.input) for t in _dispatched(actions)) == [
        ("b", "A"),
        ("c", "A"),
    ]
    state, actions = _complete(state, "b", "B")
    assert _dispatched(actions) == []
    state, actions = _complete(state, "c", "C")
    [task] = _dispatched(actions)
    assert (task.step_id, task.input) == ("d", {"b": "B", "c": "C"})


def test_single_sink_output_is_the_run_output():
    state, _ = _start(_diamond())
    for step, out in [("a", 1), ("b", 2), ("c", 3)]:
        state, _ = _complete(state, step, out)
    state, actions = _complete(state, "d", {"sum": 6})
    assert state.status is RunStatus.COMPLETED
    assert state.output == {"sum": 6}
    [done] = _records(actions, WorkflowCompleted)
    assert done.output == {"sum": 6}


def test_several_sinks_give_an_object_keyed_by_step_id():
    defn = Workflow("two").task("x", "t").task("y", "t").build()
    state, _ = _start(defn)
    state, _ = _complete(state, "x", 1)
    state, _ = _complete(state, "y", 2)
    assert state.output == {"x": 1, "y": 2}


def test_duplicate_completion_is_ignored_and_recorded():
    state, _ = _start(_diamond())
    state, _ = _complete(state, "a", "A")
    again, actions = _complete(state, "a", "A2")
    assert again.steps["a"].output == "A"
    [ignored] = _records(actions, StepResultIgnored)
    assert ignored.ignored == "step.completed"
    assert "already completed" in ignored.reason
    assert _dispatched(actions) == []


def test_step_without_retry_policy_fails_the_run_and_dead_letters():
    state, _ = _start(_diamond())
    state, actions = _fail(state, "a")
    assert state.status is RunStatus.FAILED
    assert state.steps["a"].status is StepStatus.FAILED
    assert [type(a) for a in actions][:1] == [DeadLetter]
    [failed] = _records(actions, WorkflowFailed)
    assert "'a'" in failed.error.message


def test_retry_policy_schedules_a_durable_retry_with_backoff():
    defn = parse_workflow(
        {
            "name": "r",
            "steps": [
                {
                    "id": "a",
                    "task": "t",
                    "retry": {
                        "max_attempts": 2,
                        "strategy": "exponential",
                        "initial_delay": "1s",
                        "multiplier": 2.0,
                    },
                }
            ],
        }
    )
    state, _ = _start(defn)
    state, _ = _fail(state, "a", attempt=0, ts=2000.0)
    assert state.steps["a"].status is StepStatus.RETRYING
    assert state.steps["a"].retry_at == 2001.0
    [timer] = timers(state)
    assert isinstance(timer.event, StepRetryDue)
    assert timer.event.attempt == 1

    due = advance(state, timer.event)
    [task] = _dispatched(due.actions)
    assert task.retry_count == 1
    state, _ = _fail(due.state, "a", attempt=1, ts=3000.0)
    assert state.steps["a"].retry_at == 3002.0
    state = advance(state, timers(state)[0].event).state
    state, _actions = _fail(state, "a", attempt=2)
    assert state.status is RunStatus.FAILED
    assert state.steps["a"].attempts == 3


def test_permanent_failure_skips_retries():
    defn = parse_workflow(
        {"name": "r", "steps": [{"id": "a", "task": "t", "retries": 5}]}
    )
    state, _ = _start(defn)
    state, _ = _fail(state, "a", failure=FailureKind.PERMANENT)
    assert state.status is RunStatus.FAILED


def test_retry_after_overrides_backoff_and_is_clamped():
    defn = parse_workflow(
        {"name": "r", "steps": [{"id": "a", "task": "t", "retries": 3}]}
    )
    state, _ = _start(defn)
    state, _ = _fail(
        state, "a", failure=FailureKind.RETRY_AFTER, retry_after_ms=10, ts=50.0
    )
    assert state.steps["a"].retry_at == 50.1


def test_lost_lease_without_policy_gets_two_retries():
    defn = Workflow("w").task("a", "t").build()
    state, actions = _start(defn)
    [task] = _dispatched(actions)
    assert task.max_retry_count == 2
    started = advance(
        state, StepStarted(run_id=RUN, step_id="a", attempt=0, worker_id="w1")
    )
    redelivered = advance(
        started.state, StepStarted(run_id=RUN, step_id="a", attempt=1, worker_id="w2")
    )
    step = redelivered.state.steps["a"]
    assert step.retry_count == 1
    assert step.status is StepStatus.RUNNING
    assert step.history[0].outcome == "lease_lost"
    assert any(isinstance(a, SupersedeAttempt) for a in redelivered.actions)


def test_late_result_of_superseded_attempt_is_ignored():
    defn = Workflow("w").task("a", "t").build()
    state, _ = _start(defn)
    state = advance(state, StepStarted(run_id=RUN, step_id="a", attempt=0)).state
    state = advance(state, StepStarted(run_id=RUN, step_id="a", attempt=1)).state
    late = advance(
        state, StepCompleted(run_id=RUN, step_id="a", attempt=0, output="old")
    )
    assert late.state.steps["a"].status is StepStatus.RUNNING
    [ignored] = _records(late.actions, StepResultIgnored)
    assert "superseded" in ignored.reason


def test_step_timeout_fails_the_attempt_and_supersedes_it():
    defn = Workflow("w").task("a", "t", timeout=2.0).build()
    state, _ = _start(defn)
    state = advance(
        state, StepStarted(run_id=RUN, step_id="a", attempt=0, ts=10.0)
    ).state
    [timer] = timers(state)
    assert isinstance(timer.event, StepTimedOut)
    assert timer.fire_at == 12.0
    decision = advance(state, timer.event)
    assert decision.state.status is RunStatus.FAILED
    assert decision.state.steps["a"].error.type == "StepTimeout"
    assert any(isinstance(a, SupersedeAttempt) for a in decision.actions)


def test_workflow_timeout_fails_the_run_with_reason_timeout():
    defn = Workflow("w", timeout=5.0).task("a", "t").build()
    state, _ = _start(defn, ts=100.0)
    deadline = next(t for t in timers(state) if isinstance(t.event, WorkflowTimedOut))
    assert deadline.fire_at == 105.0
    decision = advance(state, deadline.event)
    assert decision.state.status is RunStatus.FAILED
    assert decision.state.reason == "timeout"


def test_cancel_marks_unfinished_steps_cancelled():
    state, _ = _start(_diamond())
    state = advance(state, WorkflowCancelled(run_id=RUN, reason="stop")).state
    assert state.status is RunStatus.CANCELLED
    assert {s.status for s in state.steps.values()} == {StepStatus.CANCELLED}


def test_on_failure_target_runs_with_the_error_and_recovers_the_step():
    defn = parse_workflow(
        {
            "name": "r",
            "steps": [
                {"id": "fetch", "task": "fetch", "on_failure": "report"},
                {"id": "process", "task": "process", "depends_on": ["fetch"]},
                {"id": "report", "task": "report"},
            ],
        }
    )
    state, actions = _start(defn)
    assert [t.step_id for t in _dispatched(actions)] == ["fetch"]
    state, actions = _fail(state, "fetch", failure=FailureKind.PERMANENT)
    [task] = _dispatched(actions)
    assert task.step_id == "report"
    assert task.input == {"failed_step": "fetch", "error": "Boom: x"}
    assert any(isinstance(a, DeadLetter) for a in actions)
    state, actions = _complete(state, "report", "noted")
    assert state.steps["fetch"].status is StepStatus.RECOVERED
    assert state.steps["process"].status is StepStatus.SKIPPED
    assert state.status is RunStatus.COMPLETED


def test_events_after_the_run_ended_are_recorded_as_ignored():
    state, _ = _start(_diamond())
    state, _ = _fail(state, "a")
    late = advance(state, StepCompleted(run_id=RUN, step_id="a", attempt=0, output=1))
    [ignored] = _records(late.actions, StepResultIgnored)
    assert ignored.reason == "run is failed"


def test_invalid_pinned_definition_fails_the_run_instead_of_raising():
    decision = advance(
        None, WorkflowStarted(run_id=RUN, workflow={"name": "x", "steps": "no"})
    )
    assert decision.state.status is RunStatus.FAILED
    assert _records(decision.actions, WorkflowFailed)


def test_records_the_engine_may_skip_never_change_the_state():
    from dagnats.protocol import (
        NO_OP_RECORDS,
        StepDeadLettered,
        StepRetryScheduled,
        StepSkipped,
    )

    state, _ = _start(_diamond())
    error = ErrorInfo(type="E", message="m")
    samples = [
        WorkflowCompleted(run_id=RUN, output=1),
        WorkflowFailed(run_id=RUN, error=error),
        StepRetryScheduled(run_id=RUN, step_id="a", attempt=1, due_at=5.0),
        StepSkipped(run_id=RUN, step_id="b"),
        StepDeadLettered(run_id=RUN, step_id="a", error=error),
        StepResultIgnored(
            run_id=RUN, step_id="a", ignored="step.completed", reason="r"
        ),
    ]
    assert {event.type for event in samples} == NO_OP_RECORDS
    for event in samples:
        decision = advance(state, event)
        assert decision.state is state
        assert decision.actions == []
