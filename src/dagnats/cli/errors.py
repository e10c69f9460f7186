"""How the CLI turns exceptions into messages and exit codes (one table)."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

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

# Checked in order: the first matching class decides the exit code.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (RunFailedError, EXIT_RUN_FAILED),
    (WaitTimeoutError, EXIT_RUN_FAILED),
    (WorkflowValidationError, EXIT_BAD_INPUT),
    (WorkflowNotFoundError, EXIT_BAD_INPUT),
    (RunNotFoundError, EXIT_BAD_INPUT),
    (DeadLetterNotFoundError, EXIT_BAD_INPUT),
    (InputError, EXIT_BAD_INPUT),
    (ConfigurationError, EXIT_BAD_INPUT),
    (NatsUnavailableError, EXIT_NATS_UNAVAILABLE),
    (DagnatsError, EXIT_RUN_FAILED),
)

T = TypeVar("T")


def exit_code_of(exc: BaseException) -> int:
    """The exit code for ``exc`` (see ``EXIT_CODES``)."""
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return EXIT_RUN_FAILED


def report(exc: DagnatsError) -> None:
    """Print ``exc`` for a person: one line, or the list of problems."""
    if isinstance(exc, WorkflowValidationError):
        where = f" in {exc.source}" if exc.source else ""
        output.problems(f"invalid workflow{where}:", [str(p) for p in exc.problems])
    else:
        output.error(str(exc))


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``; on a dagnats error print it and exit with its code."""
    try:
        return asyncio.run(coro)
    except DagnatsError as exc:
        if _debug():
            raise
        report(exc)
        sys.exit(exit_code_of(exc))


def handles_errors(func: Callable[..., T]) -> Callable[..., T]:
    """Decorator for synchronous commands: same error handling."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except DagnatsError as exc:
            if _debug():
                raise
            report(exc)
            sys.exit(exit_code_of(exc))

    return wrapper


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("debug"))
