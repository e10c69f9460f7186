"""Property tests: replaying a run's log always rebuilds the same state."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagnats.dag import DispatchTask, RecordEvent, RunState, Workflow, advance, timers
from dagnats.dag.snapshot import run_from_dict, run_to_dict
from dagnats.protocol import (
    ErrorInfo,
    FailureKind,
    StepCompleted,
    StepFailed,
    StepStarted,
    WorkflowStarted,
)

RUN = "feedfacefeedfacefeedfacefeedface"


@st.composite
def workflows(draw):
    size = draw(st.integers(min_value=1, max_value=6))
    builder = Workflow(
        "prop",
        default_retry={"max_attempts": draw(st.integers(0, 2)), "initial_delay": "1s"},
    )
    for index in range(size):
        parents = (
            draw(st.lists(st.integers(0, index - 1), unique=True, max_size=2))
            if index
            else []
        )
        builder.task(f"s{index}", "t", depends_on=[f"s{p}" for p in parents])
    return builder.build()


OUTCOMES = st.sampled_from(["complete", "fail", "permanent", "lose_lease", "duplicate"])


def _simulate(defn, choices) -> tuple[RunState, list]:
    """Drive a run like engine + workers would; returns final state and full log."""
    log: list = []
    ts = 1000.0
    state = None
    queue = [WorkflowStarted(run_id=RUN, workflow=defn.to_json_dict(), input=0, ts=ts)]
    choice_iter = iter(choices)
    for _ in range(500):
        if not queue:
            due = timers(state) if state is not None else []
            if not due:
                break
            queue.append(min(due, key=lambda t: t.fire_at).event)
        event = queue.pop(0)
        log.append(event)
        decision = advance(state, event)
        state = decision.state
        for action in decision.actions:
            if isinstance(action, RecordEvent):
                log.append(action.event)
                state = advance(state, action.event).state
            elif isinstance(action, DispatchTask):
                ts += 1
                queue.extend(_worker_events(action, next(choice_iter, "complete"), ts))
    return state, log


def _worker_events(task: DispatchTask, choice: str, ts: float) -> list:
    base = {"run_id": RUN, "step_id": task.step_id}
    attempt = task.retry_count
    started = StepStarted(**base, attempt=attempt, ts=ts)
    error = ErrorInfo(type="E", message="m")
    if choice == "lose_lease":
        again = StepStarted(**base, attempt=attempt + 1, ts=ts + 0.5)
        return [
            started,
            again,
            StepCompleted(**base, attempt=attempt + 1, output=1, ts=ts + 0.6),
        ]
    if choice == "fail":
        return [started, StepFailed(**base, attempt=attempt, error=error, ts=ts + 0.1)]
    if choice == "permanent":
        failure = FailureKind.PERMANENT
        return [
            started,
            StepFailed(**base, attempt=attempt, error=error, failure=failure, ts=ts),
        ]
    done = StepCompleted(**base, attempt=attempt, output=task.step_id, ts=ts + 0.1)
    if choice == "duplicate":
        return [started, done, done]
    return [started, done]


def _fold(log) -> RunState:
    state = None
    for event in log:
        state = advance(state, event).state
    return state


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workflows(), st.lists(OUTCOMES, max_size=30))
def test_replaying_the_log_gives_the_same_state(defn, choices):
    live, log = _simulate(defn, choices)
    assert _fold(log) == live


@settings(max_examples=100, deadline=None)
@given(workflows(), st.lists(OUTCOMES, max_size=30), st.data())
def test_redelivered_events_do_not_change_the_state(defn, choices, data):
    live, log = _simulate(defn, choices)
    index = data.draw(st.integers(0, len(log) - 1))
    # A redelivery: the same event again right after itself.
    with_duplicate = [*log[: index + 1], log[index], *log[index + 1 :]]
    assert _fold(with_duplicate) == live


@settings(max_examples=100, deadline=None)
@given(workflows(), st.lists(OUTCOMES, max_size=30))
def test_every_run_reaches_a_terminal_status(defn, choices):
    live, _ = _simulate(defn, choices)
    assert live.status.is_terminal


@settings(max_examples=100, deadline=None)
@given(workflows(), st.lists(OUTCOMES, max_size=30))
def test_snapshot_round_trip_is_lossless(defn, choices):
    live, _ = _simulate(defn, choices)
    rebuilt = run_from_dict(run_to_dict(live))
    assert replace(rebuilt, workflow=live.workflow) == live
    assert rebuilt.workflow.to_json_dict() == live.workflow.to_json_dict()
