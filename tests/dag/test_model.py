"""Tests of the workflow model: durations, derived graph facts, JSON output."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dagnats.dag.model import (
    STEP_TYPES,
    RetryPolicy,
    StepDef,
    WorkflowDef,
)
from dagnats.dag.schema import workflow_json_schema

SECOND_NS = 1_000_000_000


def _workflow(*steps: dict[str, Any], **fields: Any) -> WorkflowDef:
    return WorkflowDef.model_validate({"name": "wf", "steps": list(steps), **fields})


@pytest.mark.parametrize(
    ("value", "expected_ns"),
    [
        ("1500ms", 1_500_000_000),
        ("30s", 30 * SECOND_NS),
        ("1h30m", 5_400 * SECOND_NS),
        ("250us", 250_000),
        (1_000_000_000, SECOND_NS),
        (0, 0),
        ("0", 0),
        (timedelta(milliseconds=5), 5_000_000),
    ],
)
def test_duration_accepts_nanoseconds_go_text_and_timedelta(
    value: object, expected_ns: int
) -> None:
    step = StepDef(id="a", task="a", timeout=value)

    assert step.timeout == expected_ns


@pytest.mark.parametrize("value", ["-1s", -5, "abc", "10", 1.5, True, [1], 2**63])
def test_duration_refuses_negative_and_malformed_values(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        StepDef(id="a", timeout=value)

    assert caught.value.errors()[0]["loc"] == ("timeout",)


@given(
    hours=st.integers(0, 99),
    minutes=st.integers(0, 59),
    seconds=st.integers(0, 59),
    millis=st.integers(0, 999),
)
def test_compound_go_duration_text_equals_its_sum(
    hours: int, minutes: int, seconds: int, millis: int
) -> None:
    text = f"{hours}h{minutes}m{seconds}s{millis}ms"
    expected = ((hours * 60 + minutes) * 60 + seconds) * SECOND_NS + millis * 1_000_000

    assert RetryPolicy(initial_delay=text).initial_delay == expected


def test_durations_serialise_as_integer_nanoseconds() -> None:
    defn = _workflow(
        {"id": "a", "task": "a", "timeout": "1m", "retry": {"initial_delay": "2s"}},
        timeout="1h",
    )

    data = defn.to_json_dict()

    assert data["timeout"] == 3_600 * SECOND_NS
    assert data["steps"][0]["timeout"] == 60 * SECOND_NS
    assert data["steps"][0]["retry"] == {"initial_delay": 2 * SECOND_NS}


def test_models_are_frozen() -> None:
    step = StepDef(id="a", task="a")

    with pytest.raises(ValidationError):
        step.task = "b"  # type: ignore[misc]


def test_model_refuses_unknown_keys() -> None:
    with pytest.raises(ValidationError) as caught:
        StepDef.model_validate({"id": "a", "taks": "a"})

    assert caught.value.errors()[0]["type"] == "extra_forbidden"


def test_numbers_written_as_strings_are_refused_like_go_does() -> None:
    with pytest.raises(ValidationError):
        StepDef.model_validate({"id": "a", "retries": "3"})


def test_null_means_the_default_as_in_go() -> None:
    step = StepDef.model_validate({"id": "a", "depends_on": None, "task": None})

    assert step.depends_on == ()
    assert step.task == ""


def test_step_defaults_match_dagnats() -> None:
    step = StepDef(id="a")

    assert step.type == "normal"
    assert step.type in STEP_TYPES
    assert (step.task, step.depends_on, step.timeout, step.retry) == ("", (), 0, None)


def test_aux_steps_are_on_failure_and_compensate_targets() -> None:
    defn = _workflow(
        {"id": "a", "task": "a", "on_failure": "report"},
        {"id": "b", "task": "b", "depends_on": ["a"], "compensate": "undo"},
        {"id": "report", "task": "report"},
        {"id": "undo", "task": "undo"},
    )

    assert defn.aux_steps == {"report": True, "undo": True}
    assert defn.is_aux("report")
    assert not defn.is_aux("a")


def test_aux_steps_given_in_input_are_recomputed() -> None:
    defn = _workflow(
        {"id": "a", "task": "a", "on_failure": "report"},
        {"id": "report", "task": "report"},
        aux_steps={"a": True},
    )

    assert defn.aux_steps == {"report": True}


def test_step_names_itself_as_target_is_not_aux() -> None:
    defn = _workflow({"id": "a", "task": "a", "on_failure": "a"})

    assert defn.aux_steps == {}


def test_step_lookup_returns_the_step_and_raises_key_error_when_missing() -> None:
    defn = _workflow({"id": "a", "task": "t"})

    assert defn.step("a").task == "t"
    with pytest.raises(KeyError, match="no step 'zz'"):
        defn.step("zz")


def test_dependents_are_listed_in_file_order() -> None:
    defn = _workflow(
        {"id": "a", "task": "a"},
        {"id": "c", "task": "c", "depends_on": ["a"]},
        {"id": "b", "task": "b", "depends_on": ["a"]},
    )

    assert defn.dependents("a") == ["c", "b"]
    assert defn.dependents("b") == []


def test_entry_steps_exclude_aux_steps() -> None:
    defn = _workflow(
        {"id": "fetch", "task": "f", "on_failure": "report"},
        {"id": "process", "task": "p", "depends_on": ["fetch"]},
        {"id": "report", "task": "r"},
        {"id": "other", "task": "o"},
    )

    assert defn.entry_steps() == ["fetch", "other"]


def test_sink_steps_ignore_aux_steps() -> None:
    defn = _workflow(
        {"id": "fetch", "task": "f", "on_failure": "report"},
        {"id": "process", "task": "p", "depends_on": ["fetch"]},
        {"id": "report", "task": "r"},
        {"id": "side", "task": "s", "depends_on": ["fetch"]},
    )

    assert defn.sink_steps() == ["process", "side"]


def test_to_json_dict_omits_defaults() -> None:
    defn = _workflow({"id": "a", "task": "a", "type": "normal", "depends_on": []})

    assert defn.to_json_dict() == {"name": "wf", "steps": [{"id": "a", "task": "a"}]}


def test_to_json_dict_keeps_computed_aux_steps() -> None:
    defn = _workflow(
        {"id": "a", "task": "a", "on_failure": "r"}, {"id": "r", "task": "r"}
    )

    assert defn.to_json_dict()["aux_steps"] == {"r": True}


def test_json_schema_allows_schema_key_and_forbids_unknown_keys() -> None:
    schema = workflow_json_schema()

    assert schema["properties"]["$schema"] == {
        "type": "string",
        "description": "Reference to this schema; ignored by dagnats.",
    }
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["name"]
    assert schema["$defs"]["StepDef"]["additionalProperties"] is False


def test_json_schema_durations_take_integers_or_go_text() -> None:
    timeout = workflow_json_schema()["$defs"]["StepDef"]["properties"]["timeout"]

    kinds = {option["type"] for option in timeout["anyOf"]}

    assert kinds == {"integer", "string"}


def test_json_schema_lists_the_ten_step_types() -> None:
    step_type = workflow_json_schema()["$defs"]["StepDef"]["properties"]["type"]

    assert step_type["enum"] == list(STEP_TYPES)
    assert len(STEP_TYPES) == 10
