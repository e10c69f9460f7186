"""Tests of parsing DagNats workflow JSON, including the shared example files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagnats.dag.model import RetryPolicy, StepDef, WorkflowDef
from dagnats.dag.parse import (
    TRIGGERS_NOT_SUPPORTED,
    parse_workflow,
    parse_workflow_file,
)
from dagnats.errors import WorkflowValidationError

EXAMPLES_DIR = Path(
    os.environ.get(
        "DAGNATS_EXAMPLES_DIR",
        Path(__file__).resolve().parents[3] / "shared" / "examples",
    )
)
RUNNABLE_EXAMPLES = {
    "cron-trigger.json",
    "hello-world.json",
    "payment-flow.json",
    "retry-errors.json",
    "signals.json",
}
NOT_YET_RUNNABLE_EXAMPLES = {
    "agent-loop.json",
    "http-respond.json",
    "map-step.json",
    "sub-workflow.json",
}
SECOND_NS = 1_000_000_000


def _problems(data: dict[str, Any] | str | bytes) -> list[str]:
    with pytest.raises(WorkflowValidationError) as caught:
        parse_workflow(data)
    return [str(problem) for problem in caught.value.problems]


def _hello(**extra: Any) -> dict[str, Any]:
    return {
        "name": "hello-world",
        "steps": [
            {"id": "greet", "task": "greet"},
            {"id": "uppercase", "task": "uppercase", "depends_on": ["greet"]},
        ],
        **extra,
    }


def test_examples_directory_holds_every_expected_file() -> None:
    names = {path.name for path in EXAMPLES_DIR.glob("*.json")}

    assert names >= RUNNABLE_EXAMPLES | NOT_YET_RUNNABLE_EXAMPLES


@pytest.mark.parametrize("name", sorted(RUNNABLE_EXAMPLES))
def test_runnable_example_file_parses_unchanged(name: str) -> None:
    defn = parse_workflow_file(EXAMPLES_DIR / name)

    assert defn.steps


@pytest.mark.parametrize("name", sorted(NOT_YET_RUNNABLE_EXAMPLES))
def test_example_using_unsupported_features_fails_only_as_not_supported(
    name: str,
) -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        parse_workflow_file(EXAMPLES_DIR / name)

    messages = [problem.message for problem in caught.value.problems]
    assert messages
    assert all("not supported yet" in message for message in messages), messages


def test_hello_world_parses_to_the_expected_model() -> None:
    defn = parse_workflow_file(EXAMPLES_DIR / "hello-world.json")

    assert defn == WorkflowDef(
        name="hello-world",
        version="1.0",
        steps=(
            StepDef(id="greet", task="greet"),
            StepDef(id="uppercase", task="uppercase", depends_on=("greet",)),
        ),
    )
    assert defn.entry_steps() == ["greet"]
    assert defn.sink_steps() == ["uppercase"]


def test_retry_errors_file_marks_the_on_failure_target_as_aux_step() -> None:
    defn = parse_workflow_file(EXAMPLES_DIR / "retry-errors.json")

    assert defn.aux_steps == {"report-error": True}
    assert defn.entry_steps() == ["fetch"]
    assert defn.step("fetch").retry == RetryPolicy(
        max_attempts=3,
        strategy="exponential",
        initial_delay=SECOND_NS,
        max_delay=10 * SECOND_NS,
        multiplier=2.0,
    )


def test_http_respond_file_refuses_its_triggers_in_one_named_problem() -> None:
    problems = _problems((EXAMPLES_DIR / "http-respond.json").read_bytes())

    assert f"$.triggers: {TRIGGERS_NOT_SUPPORTED}" in problems


def test_schema_key_is_ignored_at_top_level() -> None:
    defn = parse_workflow(_hello(**{"$schema": "anything.json"}))

    assert defn == parse_workflow(_hello())


def test_schema_key_inside_a_step_is_an_unknown_key() -> None:
    data = _hello()
    data["steps"][0]["$schema"] = "x"

    problems = _problems(data)

    assert len(problems) == 1
    assert problems[0].startswith("$.steps[0].$schema: unknown key '$schema'")


def test_unknown_top_level_key_names_path_and_closest_key() -> None:
    problems = _problems(_hello(versoin="1.0"))

    assert len(problems) == 1
    assert problems[0].startswith(
        "$.versoin: unknown key 'versoin' (did you mean 'version'?); allowed keys: "
    )


def test_unknown_nested_key_names_its_json_path_and_closest_key() -> None:
    data = _hello()
    data["steps"][1]["retry"] = {"max_atempts": 3}

    problems = _problems(data)

    assert problems == [
        "$.steps[1].retry.max_atempts: unknown key 'max_atempts' (did you mean "
        "'max_attempts'?); allowed keys: max_attempts, strategy, initial_delay, "
        "max_delay, multiplier, jitter"
    ]


def test_unknown_key_far_from_any_allowed_key_gets_no_suggestion() -> None:
    problems = _problems(_hello(zzzz=1))

    assert "did you mean" not in problems[0]


@pytest.mark.parametrize(
    ("timeout", "expected_ns"),
    [("1500ms", 1_500_000_000), ("1h30m", 5_400 * SECOND_NS), (SECOND_NS, SECOND_NS)],
)
def test_step_timeout_accepts_go_text_and_nanoseconds(
    timeout: object, expected_ns: int
) -> None:
    data = _hello()
    data["steps"][0]["timeout"] = timeout

    assert parse_workflow(data).step("greet").timeout == expected_ns


def test_malformed_duration_is_reported_with_path_and_value() -> None:
    data = _hello()
    data["steps"][0]["timeout"] = "abc"

    problems = _problems(data)

    assert len(problems) == 1
    assert problems[0].startswith("$.steps[0].timeout: 'abc' is not a duration")


def test_negative_duration_is_reported_with_path() -> None:
    data = _hello(timeout="-1s")

    assert _problems(data) == [
        "$.timeout: '-1s' is negative; a duration must be zero or more, for "
        "example '30s'"
    ]


def test_wrong_json_type_shows_the_value_and_the_expected_type() -> None:
    data = _hello()
    data["steps"][1]["retries"] = "3"

    assert _problems(data) == [
        "$.steps[1].retries: expected a whole number, got a string '3'; write a "
        "whole number here"
    ]


def test_unknown_retry_strategy_lists_the_choices() -> None:
    data = _hello()
    data["steps"][0]["retry"] = {"strategy": "expo"}

    problems = _problems(data)

    assert problems == [
        "$.steps[0].retry.strategy: 'expo' is not allowed; use 'fixed', 'linear' "
        "or 'exponential'"
    ]


def test_missing_step_id_is_reported_as_missing_key() -> None:
    data = _hello()
    del data["steps"][1]["id"]

    assert _problems(data) == ["$.steps[1].id: required key 'id' is missing; add it"]


def test_every_problem_is_reported_at_once() -> None:
    data = _hello(extra_key=True)
    data["steps"][0]["timeout"] = "abc"
    data["steps"][1]["depends_on"] = ["gret"]

    problems = _problems(data)

    assert len(problems) == 3
    assert any(p.startswith("$.extra_key: unknown key") for p in problems)
    assert any(
        p.startswith("$.steps[0].timeout: 'abc' is not a duration") for p in problems
    )
    assert any(
        p.startswith("$.steps[1].depends_on[0]: unknown step 'gret' (did you mean")
        for p in problems
    )


def test_type_problem_of_the_name_is_not_reported_twice() -> None:
    problems = _problems({"name": 5, "steps": [{"id": "a", "task": "a"}]})

    assert problems == [
        "$.name: expected a string, got a number 5; write a string here"
    ]


def test_graph_is_not_checked_when_a_step_has_no_usable_id() -> None:
    problems = _problems(
        {
            "name": "wf",
            "steps": [{"id": 7, "task": "a"}, {"id": "b", "depends_on": ["x"]}],
        }
    )

    assert problems == [
        "$.steps[0].id: expected a string, got a number 7; write a string here"
    ]


def test_invalid_json_text_reports_line_and_column() -> None:
    problems = _problems('{\n  "name": "x",\n  "steps": [\n}')

    assert len(problems) == 1
    assert problems[0].startswith("$: invalid JSON at line 4, column 1:")


def test_json_that_is_not_an_object_is_refused() -> None:
    assert _problems("[1, 2]") == [
        '$: a workflow is a JSON object, got an array; write it as {"name": ..., '
        '"steps": [...]}'
    ]


def test_nan_is_not_json() -> None:
    problems = _problems('{"name": "x", "steps": [], "timeout": NaN}')

    assert problems == ["$: NaN is not valid JSON; write a number or null instead"]


def test_text_bytes_and_dict_inputs_parse_to_equal_models() -> None:
    text = json.dumps(_hello())

    assert (
        parse_workflow(text)
        == parse_workflow(text.encode())
        == parse_workflow(_hello())
    )


def test_error_names_its_source(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"name": ""}')

    with pytest.raises(WorkflowValidationError) as caught:
        parse_workflow_file(path)

    assert caught.value.source == str(path)
    assert f"invalid workflow in {path}" in str(caught.value)


def test_missing_file_is_a_validation_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"

    with pytest.raises(WorkflowValidationError) as caught:
        parse_workflow_file(path)

    assert caught.value.problems[0].path == "$"
    assert str(path) in caught.value.problems[0].message


@pytest.mark.parametrize("name", sorted(RUNNABLE_EXAMPLES))
def test_to_json_dict_of_an_example_round_trips(name: str) -> None:
    defn = parse_workflow_file(EXAMPLES_DIR / name)

    assert parse_workflow(defn.to_json_dict()) == defn
    assert parse_workflow(json.dumps(defn.to_json_dict())) == defn


@st.composite
def _acyclic_workflows(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 8))
    ids = [f"s{i}" for i in range(count)]
    steps: list[dict[str, Any]] = []
    for index, step_id in enumerate(ids):
        step: dict[str, Any] = {
            "id": step_id,
            "task": draw(st.sampled_from(["a", "b.c"])),
        }
        parents = (
            draw(st.lists(st.sampled_from(ids[:index]), unique=True)) if index else []
        )
        if parents:
            step["depends_on"] = parents
        if draw(st.booleans()):
            step["timeout"] = draw(st.sampled_from(["30s", "1h30m", 5, "250ms"]))
        if draw(st.booleans()):
            step["retry"] = {
                "max_attempts": draw(st.integers(0, 10)),
                "strategy": draw(st.sampled_from(["fixed", "linear", "exponential"])),
                "initial_delay": draw(st.integers(0, 10**10)),
                "jitter": draw(st.sampled_from([0.0, 0.5, 1.0])),
            }
        steps.append(step)
    return {
        "name": "generated",
        "version": draw(st.sampled_from(["", "2"])),
        "steps": steps,
    }


@given(_acyclic_workflows())
def test_to_json_dict_round_trips_for_generated_workflows(data: dict[str, Any]) -> None:
    defn = parse_workflow(data)

    assert parse_workflow(defn.to_json_dict()) == defn
