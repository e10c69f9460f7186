"""The CLI's one table from exception to exit code, and how errors are shown."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from dagnats.cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_CODES,
    EXIT_NATS_UNAVAILABLE,
    EXIT_RUN_FAILED,
    ReportingGroup,
    exit_code_of,
)
from dagnats.cli.main import EXIT_CODES as MAIN_EXIT_CODES
from dagnats.errors import (
    InputError,
    NatsUnavailableError,
    Problem,
    ResourceConflictError,
    RunFailedError,
    RunNotFoundError,
    WaitTimeoutError,
    WorkflowNotFoundError,
    WorkflowValidationError,
)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (RunFailedError("r1", "failed", "boom"), EXIT_RUN_FAILED),
        (RunFailedError("r1", "cancelled", "stop"), EXIT_RUN_FAILED),
        (WaitTimeoutError("r1", 1.0), EXIT_RUN_FAILED),
        (WorkflowValidationError([Problem("$.name", "missing")]), EXIT_BAD_INPUT),
        (WorkflowNotFoundError("nowhere"), EXIT_BAD_INPUT),
        (RunNotFoundError("r1"), EXIT_BAD_INPUT),
        (InputError("too large"), EXIT_BAD_INPUT),
        (ResourceConflictError("stream exists"), EXIT_BAD_INPUT),
        (click.UsageError("bad flag"), EXIT_BAD_INPUT),
        (NatsUnavailableError("nats://127.0.0.1:1"), EXIT_NATS_UNAVAILABLE),
        (ValueError("a bug"), EXIT_RUN_FAILED),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else "",
)
def test_exit_code_is_that_of_the_nearest_class_in_the_table(exc, code):
    assert exit_code_of(exc) == code


def test_main_exposes_the_same_single_table():
    assert MAIN_EXIT_CODES is EXIT_CODES


def failing_cli(exc: Exception) -> click.Group:
    """A root group like ``dagnats`` whose one command raises ``exc``."""

    @click.group(cls=ReportingGroup)
    @click.option("--debug", is_flag=True)
    def root(debug: bool) -> None:
        pass

    @root.command()
    def fail() -> None:
        raise exc

    return root


def test_unexpected_exception_is_one_line_and_exit_1_without_traceback():
    result = CliRunner().invoke(failing_cli(KeyError("k")), ["fail"])

    assert result.exit_code == EXIT_RUN_FAILED
    assert result.stderr.count("\n") == 1
    assert "unexpected KeyError" in result.stderr
    assert "--debug" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_lets_the_exception_through():
    runner = CliRunner()

    result = runner.invoke(failing_cli(KeyError("k")), ["--debug", "fail"])

    assert isinstance(result.exception, KeyError)


def test_validation_error_lists_every_problem_on_stderr():
    problems = [Problem("$.steps[0].id", "missing"), Problem("$.name", "empty")]
    exc = WorkflowValidationError(problems, source="wf.json")

    result = CliRunner().invoke(failing_cli(exc), ["fail"])

    assert result.exit_code == EXIT_BAD_INPUT
    lines = result.stderr.splitlines()
    assert lines[0] == "error: invalid workflow in wf.json:"
    assert lines[1:] == ["  $.steps[0].id: missing", "  $.name: empty"]


def test_error_text_with_brackets_is_printed_literally():
    result = CliRunner().invoke(failing_cli(InputError("bad [bold]x[/bold]")), ["fail"])

    assert result.stderr == "error: bad [bold]x[/bold]\n"
