"""How the CLI turns exceptions into messages and exit codes (one table)."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import click
from nats.errors import Error as NatsError

from dagnats.cli import output
from dagnats.errors import (
    ConfigurationError,
    DagnatsError,
    DeadLetterNotFoundError,
    InputError,
    NatsUnavailableError,
    RunFailedError,
    RunNotFoundError,
    WaitTimeoutError,
    WorkflowNotFoundError,
    WorkflowValidationError,
)

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_NATS_UNAVAILABLE = 3

# The nearest class in an exception's MRO decides its exit code. click prints
# its own usage errors (exit 2); they are listed so the table is complete.
EXIT_CODES: dict[type[BaseException], int] = {
    RunFailedError: EXIT_RUN_FAILED,
    WaitTimeoutError: EXIT_RUN_FAILED,
    WorkflowValidationError: EXIT_BAD_INPUT,
    WorkflowNotFoundError: EXIT_BAD_INPUT,
    RunNotFoundError: EXIT_BAD_INPUT,
    DeadLetterNotFoundError: EXIT_BAD_INPUT,
    InputError: EXIT_BAD_INPUT,
    ConfigurationError: EXIT_BAD_INPUT,
    click.UsageError: EXIT_BAD_INPUT,
    NatsUnavailableError: EXIT_NATS_UNAVAILABLE,
    NatsError: EXIT_NATS_UNAVAILABLE,
    DagnatsError: EXIT_RUN_FAILED,
    Exception: EXIT_RUN_FAILED,
}

T = TypeVar("T")


def exit_code_of(exc: BaseException) -> int:
    """The exit code for ``exc`` (see ``EXIT_CODES``)."""
    for kind in type(exc).__mro__:
        code = EXIT_CODES.get(kind)
        if code is not None:
            return code
    return EXIT_RUN_FAILED


def report(exc: BaseException) -> None:
    """Print ``exc`` for a person: one line, or the list of problems."""
    if isinstance(exc, WorkflowValidationError):
        where = f" in {exc.source}" if exc.source else ""
        output.problems(f"invalid workflow{where}:", [str(p) for p in exc.problems])
    elif isinstance(exc, DagnatsError):
        output.error(str(exc))
    elif isinstance(exc, NatsError):
        output.error(f"NATS request failed ({type(exc).__name__}: {exc})")
    else:
        output.error(
            f"unexpected {type(exc).__name__}: {exc} "
            "(run again with --debug for the traceback)"
        )


def exit_for(exc: BaseException) -> NoReturn:
    """Print ``exc`` and exit with its code; under ``--debug`` re-raise it."""
    if _debug():
        raise exc
    report(exc)
    sys.exit(exit_code_of(exc))


class ReportingGroup(click.Group):
    """The root command group: any error below it ends as one line and a code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Invoke the subcommand; map its exception through ``EXIT_CODES``."""
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the CLI's supervision boundary
            exit_for(exc)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``; on a dagnats error print it and exit with its code."""
    try:
        return asyncio.run(coro)
    except DagnatsError as exc:
        exit_for(exc)


def handles_errors(func: Callable[..., T]) -> Callable[..., T]:
    """Decorator for synchronous commands: same error handling."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except DagnatsError as exc:
            exit_for(exc)

    return wrapper


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("debug"))
