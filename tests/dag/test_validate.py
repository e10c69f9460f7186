"""Tests of workflow validation: names, references, cycles, ranges, the feature gate."""

from __future__ import annotations

from typing import Any

import pytest

from dagnats.dag.model import STEP_TYPES, WorkflowDef
from dagnats.dag.validate import (
    UNSUPPORTED_FIELDS,
    UNSUPPORTED_STEP_TYPES,
    validate,
)

HOUR_NS = 3_600_000_000_000


def _problems(*steps: dict[str, Any], **fields: Any) -> list[str]:
    defn = WorkflowDef.model_validate({"name": "wf", "steps": list(steps), **fields})
    return [str(problem) for problem in validate(defn)]


def _step(step_id: str, *parents: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "task": step_id, "depends_on": list(parents), **fields}


def test_valid_definition_has_no_problems() -> None:
    assert _problems(_step("a"), _step("b", "a"), _step("c", "a", "b")) == []


def test_agent_step_is_supported() -> None:
    assert _problems(_step("a", type="agent")) == []


def test_empty_workflow_name_is_refused() -> None:
    defn = WorkflowDef(name="", steps=())

    assert [str(p) for p in validate(defn)] == [
        "$.name: the workflow name is empty; use 1 to 128 characters",
        "$.steps: a workflow needs at least one step; add a step",
    ]


def test_duplicate_step_id_names_both_positions() -> None:
    problems = _problems(_step("a"), _step("b"), _step("c"), _step("b"))

    assert problems == ["$.steps[3].id: duplicate step id 'b' (also at $.steps[1])"]


@pytest.mark.parametrize("name", ["llm.chat", "render gpu", "étape-1", "a" * 128])
def test_ids_and_tasks_allow_dots_spaces_unicode_up_to_128_chars(name: str) -> None:
    assert _problems({"id": name, "task": name}) == []


def test_id_longer_than_128_characters_is_refused() -> None:
    problems = _problems(_step("a" * 129))

    assert len(problems) == 2  # the id, and the task named after it
    assert problems[0].startswith("$.steps[0].id: the step id 'aaaa")
    assert problems[0].endswith("is 129 characters long; use at most 128")


def test_control_characters_in_a_task_are_refused() -> None:
    problems = _problems({"id": "a", "task": "bad\ttask"})

    assert problems == [
        "$.steps[0].task: the task 'bad\\ttask' contains a control character; remove it"
    ]


def test_unknown_dependency_suggests_the_closest_id() -> None:
    problems = _problems(_step("greet"), _step("upper", "gret"))

    assert problems == [
        "$.steps[1].depends_on[0]: unknown step 'gret' (did you mean 'greet'?); "
        "depends_on must name steps of this workflow"
    ]


def test_self_dependency_is_refused() -> None:
    problems = _problems(_step("a", "a"))

    assert problems == [
        "$.steps[0].depends_on[0]: step 'a' depends on itself; remove 'a' from its "
        "depends_on"
    ]


def test_cycle_is_reported_with_its_steps_in_order() -> None:
    problems = _problems(_step("a", "c"), _step("b", "a"), _step("c", "b"))

    assert len(problems) == 1
    assert problems[0].startswith("$.steps[0].depends_on: dependency cycle ")
    assert "a → b → c → a" in problems[0]


def test_two_separate_cycles_are_each_reported() -> None:
    problems = _problems(
        _step("a", "b"), _step("b", "a"), _step("x", "y"), _step("y", "x")
    )

    assert len(problems) == 2
    assert "a → b → a" in problems[0]
    assert "x → y → x" in problems[1]


def test_steps_downstream_of_a_cycle_are_not_reported_as_cycles() -> None:
    problems = _problems(_step("a", "b"), _step("b", "a"), _step("after", "b"))

    assert len(problems) == 1
    assert "a → b → a" in problems[0]


def test_on_failure_target_must_exist() -> None:
    problems = _problems(_step("fetch", on_failure="report"), _step("reprt"))

    assert problems == [
        "$.steps[0].on_failure: unknown step 'report' (did you mean 'reprt'?); "
        "on_failure must name a step of this workflow"
    ]


def test_on_failure_target_must_not_be_the_step_itself() -> None:
    problems = _problems(_step("fetch", on_failure="fetch"))

    assert problems == [
        "$.steps[0].on_failure: step 'fetch' names itself as its on_failure step; "
        "name another step"
    ]


def test_on_failure_target_must_have_no_dependencies() -> None:
    problems = _problems(_step("fetch", on_failure="report"), _step("report", "fetch"))

    assert (
        "$.steps[0].on_failure: on_failure step 'report' has depends_on ['fetch'], "
        "but it runs only after a failure; remove its depends_on"
    ) in problems


def test_depending_on_an_aux_step_is_refused() -> None:
    problems = _problems(
        _step("fetch", on_failure="report"), _step("report"), _step("next", "report")
    )

    assert problems == [
        "$.steps[2].depends_on[0]: 'report' is an on_failure/compensate step, which "
        "runs only after a failure, so 'next' would never start; remove the "
        "dependency"
    ]


@pytest.mark.parametrize("step_type", ["normal", "agent", "map", "planner"])
def test_worker_step_without_task_names_the_step(step_type: str) -> None:
    step: dict[str, Any] = {"id": "resize", "type": step_type, "depends_on": []}
    if step_type == "map":
        step = {**step, "depends_on": ["src"], "config": {"max_items": 5}}

    problems = _problems(_step("src"), step)

    assert (
        f"$.steps[1].task: step 'resize' has no task; {step_type!r} steps need "
        'the task type their workers handle, for example "task": "resize"'
    ) in problems


def test_engine_steps_need_no_task() -> None:
    problems = _problems(
        {"id": "pay", "type": "sub_workflow", "config": {"workflow": "x"}}
    )

    assert problems == [
        "$.steps[0].type: step type 'sub_workflow' is not supported yet; this "
        "release runs only 'normal' and 'agent' steps"
    ]


def test_negative_retries_are_refused() -> None:
    assert _problems(_step("a", retries=-1)) == [
        "$.steps[0].retries: -1 is negative; use 0 or more"
    ]


def test_max_attempts_above_the_limit_is_refused() -> None:
    problems = _problems(_step("a"), default_retry={"max_attempts": 100_001})

    assert problems == [
        "$.default_retry.max_attempts: 100001 is out of range; max_attempts counts "
        "retries and must be 0 to 100000"
    ]


@pytest.mark.parametrize("jitter", [-0.1, 1.5])
def test_jitter_outside_zero_to_one_is_refused(jitter: float) -> None:
    problems = _problems(_step("a", retry={"jitter": jitter}))

    assert problems == [
        f"$.steps[0].retry.jitter: {jitter!r} is out of range; jitter is a fraction "
        "from 0 to 1"
    ]


def test_step_timeout_of_24_hours_is_accepted_and_longer_refused() -> None:
    assert _problems(_step("a", timeout=24 * HOUR_NS)) == []

    problems = _problems(_step("a", timeout="24h1s"))

    assert len(problems) == 1
    assert problems[0].startswith("$.steps[0].timeout: 86401000000000 ns is longer")


def test_unknown_step_type_lists_the_known_types() -> None:
    problems = _problems(_step("a", type="norml"))

    assert problems == [
        "$.steps[0].type: unknown step type 'norml' (did you mean 'normal'?); use "
        f"one of: {', '.join(STEP_TYPES)}"
    ]


_VALID_CONFIG = {
    "sleep": {"duration": 1_000_000_000},
    "wait_for_event": {"event": "paid"},
    "approval": {"subject": "approvals.x"},
    "map": {"max_items": 10},
    "sub_workflow": {"workflow": "child"},
    "agent_loop": {"max_iterations": 3},
    "planner": {},
    "respond": {},
}


@pytest.mark.parametrize("step_type", sorted(UNSUPPORTED_STEP_TYPES))
def test_unsupported_step_type_is_refused_not_ignored(step_type: str) -> None:
    step = _step("s", "src", type=step_type, config=_VALID_CONFIG[step_type])

    problems = _problems(_step("src"), step)

    assert problems == [
        f"$.steps[1].type: step type {step_type!r} is not supported yet; this "
        "release runs only 'normal' and 'agent' steps"
    ]


def test_gate_covers_every_type_but_normal_and_agent() -> None:
    assert set(STEP_TYPES) - UNSUPPORTED_STEP_TYPES == {"normal", "agent"}


_STEP_FIELD_SAMPLES: dict[str, Any] = {
    "skip_if": {"step_id": "src", "field": "ok", "op": "==", "value": True},
    "worker_group": "gpu",
    "compensate": "src",
    "rate_limit": {"limit": 1, "period": "1s"},
    "keyed_rate_limit": {"key": "k", "limit": 1, "period": "1s", "units": 1},
    "max_task_concurrency": 2,
    "singleton": True,
}
_WORKFLOW_FIELD_SAMPLES: dict[str, Any] = {
    "concurrency": {"max_runs": 1},
    "sticky": "soft",
    "priority": {"key": "tier", "rules": {"gold": 60}},
    "cancel_on": [
        {"event": "x", "match": {"left": "a", "op": "eq", "right": "input.a"}}
    ],
    "singleton": {"mode": "skip"},
    "idempotency_key": "order.id",
}


@pytest.mark.parametrize("field", sorted(UNSUPPORTED_FIELDS["step"]))
def test_unsupported_step_field_is_refused_naming_its_path(field: str) -> None:
    step = _step("s", "other", **{field: _STEP_FIELD_SAMPLES[field]})

    problems = _problems(_step("src"), _step("other"), step)

    assert len(problems) == 1
    assert problems[0].startswith(f"$.steps[2].{field}: {field} is not supported yet")


@pytest.mark.parametrize("field", sorted(UNSUPPORTED_FIELDS["workflow"]))
def test_unsupported_workflow_field_is_refused_naming_its_path(field: str) -> None:
    problems = _problems(_step("a"), **{field: _WORKFLOW_FIELD_SAMPLES[field]})

    assert len(problems) == 1
    assert problems[0].startswith(f"$.{field}: {field} is not supported yet")


def test_unsupported_fields_at_their_default_are_accepted() -> None:
    step = _step("a", worker_group="", singleton=False, max_task_concurrency=0)

    assert _problems(step, sticky="", idempotency_key="", cancel_on=[]) == []


def test_map_step_must_map_over_exactly_one_step() -> None:
    step = _step("m", "a", "b", type="map", config={"max_items": 5})

    problems = _problems(_step("a"), _step("b"), step)

    assert (
        "$.steps[2].config: a map step maps over the output of exactly one "
        in (problems[1])
    )


def test_agent_loop_without_max_iterations_is_refused() -> None:
    problems = _problems(_step("loop", type="agent_loop"))

    assert problems[1] == (
        "$.steps[0].config: agent_loop steps need config.max_iterations, a whole "
        "number above 0; got None"
    )


def test_respond_step_needs_a_config_object() -> None:
    problems = _problems({"id": "r", "type": "respond"})

    assert problems[1] == (
        "$.steps[0].config: a respond step needs a config object, even an empty "
        'one: "config": {}'
    )


def test_both_rate_limit_kinds_on_one_step_are_refused() -> None:
    step = _step(
        "a",
        rate_limit={"limit": 1, "period": 1},
        keyed_rate_limit={"key": "k", "limit": 1, "period": 1, "units": 1},
    )

    problems = _problems(step)

    assert (
        "$.steps[0].keyed_rate_limit: a step takes rate_limit or keyed_rate_limit, "
        "not both; keep one"
    ) in problems
