"""The exception tree of dagnats; every error a caller can catch lives here.

::

    DagnatsError
    ├── ConfigurationError            fix the settings or the call
    │   └── ResourceConflictError     a stream/bucket exists with another config
    ├── WorkflowValidationError       fix the workflow file (carries problems)
    ├── WorkflowNotFoundError         fix the workflow name
    ├── RunNotFoundError              fix the run id
    ├── DeadLetterNotFoundError       fix the dead-letter sequence
    ├── InputError                    fix the run input
    ├── NatsUnavailableError          retry later or fix the URL
    ├── TaskError                     misuse of a TaskContext (programming error)
    │   ├── TaskAlreadyResolvedError  complete/fail/heartbeat after resolution
    │   └── LeaseLostError            the task was superseded or the lease may be lost
    ├── RunFailedError                the awaited run failed or was cancelled
    └── WaitTimeoutError              the awaited run did not finish in time
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class DagnatsError(Exception):
    """Root of every error raised by dagnats."""


class ConfigurationError(DagnatsError):
    """A setting or argument is invalid."""


class ResourceConflictError(ConfigurationError):
    """A NATS stream or bucket exists with a config dagnats cannot adopt."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation problem: where it is (JSON path) and what to do."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class WorkflowValidationError(DagnatsError):
    """A workflow definition is invalid; ``problems`` lists every finding."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"invalid workflow{where}:\n{lines}")


class WorkflowNotFoundError(DagnatsError):
    """No workflow of that name is registered."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"workflow {name!r} is not registered; "
            "register it first with `dagnats workflow register FILE`"
        )


class RunNotFoundError(DagnatsError):
    """No run has that id."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"run {run_id!r} not found; check the id with `dagnats run list`"
        )


class DeadLetterNotFoundError(DagnatsError):
    """No dead letter has that sequence number."""

    def __init__(self, seq: int) -> None:
        self.seq = seq
        super().__init__(
            f"no dead letter with sequence {seq}; list them with `dagnats dlq list`"
        )


class InputError(DagnatsError):
    """A run input (or other user-supplied value) is unusable."""


class NatsUnavailableError(DagnatsError):
    """The NATS server could not be reached."""

    def __init__(self, url: str, reason: str = "") -> None:
        self.url = url
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"cannot reach NATS at {url}{detail}; start one with `dagnats serve` "
            "or pass --nats-url / NATS_URL"
        )


class TaskError(DagnatsError):
    """A TaskContext was used in a way its contract forbids."""


class TaskAlreadyResolvedError(TaskError):
    """The task was already completed or failed; the call has no effect."""


class LeaseLostError(TaskError):
    """The task's lease may be lost: it was superseded or NATS is unreachable.

    Another worker may now be running the same step; stop doing side effects.
    """


class RunFailedError(DagnatsError):
    """The awaited run ended failed or cancelled; ``run`` holds its final state."""

    def __init__(self, run_id: str, status: str, error: Any, run: Any = None) -> None:
        self.run_id = run_id
        self.status = status
        self.error = error
        self.run = run
        super().__init__(f"run {run_id} {status}: {error}")


class WaitTimeoutError(DagnatsError):
    """The awaited run did not reach a terminal status in time."""

    def __init__(self, run_id: str, timeout_s: float) -> None:
        self.run_id = run_id
        self.timeout_s = timeout_s
        super().__init__(f"run {run_id} did not finish within {timeout_s:g} s")
