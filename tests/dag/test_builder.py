"""Tests of the Python workflow builder."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from dagnats.dag.builder import Workflow
from dagnats.dag.model import RetryPolicy
from dagnats.dag.parse import parse_workflow_file
from dagnats.errors import WorkflowValidationError

EXAMPLES_DIR = Path(
    os.environ.get(
        "DAGNATS_EXAMPLES_DIR",
        Path(__file__).resolve().parents[3] / "shared" / "examples",
    )
)
SECOND_NS = 1_000_000_000


def test_build_equals_the_parsed_hello_world_file() -> None:
    built = (
        Workflow("hello-world", version="1.0")
        .task("greet", "greet")
        .task("uppercase", "uppercase", depends_on=["greet"])
        .build()
    )

    assert built == parse_workflow_file(EXAMPLES_DIR / "hello-world.json")


def test_build_equals_the_parsed_retry_errors_file() -> None:
    retry = {
        "max_attempts": 3,
        "strategy": "exponential",
        "initial_delay": 1,
        "max_delay": timedelta(seconds=10),
        "multiplier": 2.0,
    }

    built = (
        Workflow("retry-errors", version="1.0")
        .task("fetch", retry=retry, on_failure="report-error")
        .task("process", depends_on="fetch")
        .task("report-error")
        .build()
    )

    assert built == parse_workflow_file(EXAMPLES_DIR / "retry-errors.json")
    assert built.aux_steps == {"report-error": True}
    assert built.entry_steps() == ["fetch"]


def test_task_type_defaults_to_the_step_id() -> None:
    built = Workflow("wf").task("greet").build()

    assert built.step("greet").task == "greet"


@pytest.mark.parametrize(
    "timeout", [timedelta(seconds=30), 30, 30.0, "30s", timedelta(milliseconds=30_000)]
)
def test_timeout_takes_timedelta_seconds_or_go_text(timeout: object) -> None:
    built = Workflow("wf").task("a", timeout=timeout).build()  # type: ignore[arg-type]

    assert built.step("a").timeout == 30 * SECOND_NS


def test_fractional_seconds_become_nanoseconds() -> None:
    built = Workflow("wf").task("a", timeout=1.5).build()

    assert built.step("a").timeout == 1_500_000_000


def test_duration_of_the_wrong_type_raises_at_once() -> None:
    with pytest.raises(TypeError, match="is not a duration"):
        Workflow("wf").task("a", timeout=[30])  # type: ignore[arg-type]


def test_bad_go_text_is_reported_at_build_with_its_path() -> None:
    builder = Workflow("wf").task("a").task("b", timeout="soon")

    with pytest.raises(WorkflowValidationError) as caught:
        builder.build()

    assert caught.value.problems[0].path == "$.steps[1].timeout"


def test_workflow_timeout_and_default_retry() -> None:
    policy = RetryPolicy(max_attempts=2, initial_delay=SECOND_NS)

    built = (
        Workflow("wf", timeout=timedelta(hours=1), default_retry=policy)
        .task("a")
        .build()
    )

    assert built.timeout == 3_600 * SECOND_NS
    assert built.default_retry == policy


def test_metadata_and_agent_steps_are_kept() -> None:
    built = (
        Workflow("wf").agent("think", "llm.chat", metadata={"model": "small"}).build()
    )

    step = built.step("think")
    assert (step.type, step.task, step.metadata) == (
        "agent",
        "llm.chat",
        {"model": "small"},
    )


def test_build_reports_every_problem_at_once() -> None:
    builder = (
        Workflow("wf")
        .task("a", depends_on=["b"])
        .task("b", depends_on=["a"])
        .task("c", depends_on=["missing"], retry={"max_atempts": 2})
    )

    with pytest.raises(WorkflowValidationError) as caught:
        builder.build()

    paths = [problem.path for problem in caught.value.problems]
    assert paths == [
        "$.steps[2].retry.max_atempts",
        "$.steps[2].depends_on[0]",
        "$.steps[0].depends_on",
    ]
    assert "a → b → a" in caught.value.problems[2].message


def test_builder_can_be_built_twice_with_equal_results() -> None:
    builder = Workflow("wf").task("a")

    assert builder.build() == builder.build()
