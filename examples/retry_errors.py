"""Handlers for the DagNats retry-errors workflow (retries, dead letters, on_failure).

``fetch`` fails (retriably) while its retry count is below 2, then succeeds,
so a run shows three executions spaced by the exponential policy of the
file (1 s, then 2 s). Set ``ALWAYS_FAIL=1`` in the worker's environment to
make every execution fail: after 4 executions (``max_attempts: 3`` counts
retries) the step is dead-lettered, ``report-error`` runs with the error in
its input, ``fetch`` becomes ``recovered``, ``process`` is ``skipped`` and
the run completes.

    dagnats worker examples.retry_errors:worker
    dagnats workflow register examples/workflows/retry-errors.json
    dagnats run start retry-errors '"order-7"' --watch
"""

from __future__ import annotations

import os

from dagnats import TaskContext, Worker

worker = Worker()


@worker.task("fetch")
def fetch(ctx: TaskContext) -> str:
    """Fail while the retry count is below 2 (or always, with ALWAYS_FAIL=1)."""
    if os.environ.get("ALWAYS_FAIL") == "1" or ctx.retry_count < 2:
        raise ConnectionError(f"upstream unavailable (attempt {ctx.attempt})")
    return f"data for {ctx.input}"


@worker.task("process")
def process(ctx: TaskContext, data: str) -> str:
    """Upper-case the fetched data."""
    return data.upper()


@worker.task("report-error")
def report_error(ctx: TaskContext, failure: dict[str, str]) -> str:
    """Acknowledge the failure of the step it recovers."""
    return f"reported failure of {failure['failed_step']}: {failure['error']}"
