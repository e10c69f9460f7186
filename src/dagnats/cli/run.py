"""``dagnats run``: start runs, follow them to the end, inspect and cancel them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from nats.errors import Error as NatsError

from dagnats.cli import output
from dagnats.cli.errors import EXIT_RUN_FAILED
from dagnats.cli.options import chosen_url, common_options, wants_json
from dagnats.client import Client, Run
from dagnats.dag import RunStatus
from dagnats.errors import InputError, RunFailedError, WaitTimeoutError
from dagnats.protocol import (
    ErrorInfo,
    Event,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    decode_event,
    history_subject,
)

# Without news from the run for this long, its snapshot is read instead (an
# event can be missed only if the subscription lagged; the snapshot is truth).
_IDLE_CHECK_S = 1.0
# The snapshot is written after the terminal event; it trails by milliseconds.
_SNAPSHOT_LAG_S = 5.0
_SNAPSHOT_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class Finished:
    """How an awaited run ended: its output, or the failure to report."""

    run_id: str
    output: Any = None
    failure: RunFailedError | None = None


@click.group()
def run() -> None:
    """Start, follow, inspect and cancel runs."""


# --- start ---------------------------------------------------------------------


@run.command("start")
@click.argument("name")
@click.argument("input_text", metavar="[INPUT]", required=False)
@click.option("--wait", is_flag=True, help="Wait, then print the output as JSON.")
@click.option("--watch", is_flag=True, help="Print events as they happen, then wait.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds to wait at most (exit 1 after); default: no limit.",
)
@common_options
def start(
    name: str,
    input_text: str | None,
    wait: bool,
    watch: bool,
    timeout: float | None,
    nats_url: str | None,
    as_json: bool,
) -> None:
    """Start a run of workflow NAME with INPUT (JSON text, @file, or - for stdin).

    Prints the run id. With --wait (or --watch) prints the output JSON and
    exits 0 if the run completed, 1 if it failed or was cancelled; with
    --json the whole run instead.
    """
    if timeout is not None and not (wait or watch):
        raise click.UsageError("--timeout needs --wait or --watch")
    value = parse_input(input_text)
    url, as_json = chosen_url(nats_url), wants_json(as_json)

    if not (wait or watch):
        run_id = asyncio.run(_start(url, name, value))
        output.json_line({"run_id": run_id}) if as_json else output.line(run_id)
        return

    finished, final = asyncio.run(
        _start_and_wait(url, name, value, watch, timeout, as_json)
    )
    if final is not None:
        output.json_line(final.public_dict())
    elif finished.failure is None:
        output.json_line(finished.output)
    if finished.failure is not None:
        raise finished.failure


def parse_input(text: str | None) -> Any:
    """The run input from INPUT: JSON text, ``@file``, ``-`` (stdin) or absent.

    Raises:
        InputError: the file cannot be read or the text is not JSON.
    """
    if text is None:
        return None
    source = "INPUT"
    if text == "-":
        text, source = sys.stdin.read(), "stdin"
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise InputError(
                f"cannot read input file {str(path)!r}: {exc.strerror}"
            ) from exc

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{source} is not JSON ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno}): {_clip(text)!r}; quote strings, e.g. '\"Alice\"'"
        ) from exc


async def _start(url: str | None, name: str, value: Any) -> str:
    async with Client(url) as client:
        return await client.start_run(name, value)


async def _start_and_wait(
    url: str | None,
    name: str,
    value: Any,
    watch: bool,
    timeout_s: float | None,
    with_run: bool,
) -> tuple[Finished, Run | None]:
    """Start a run, wait for its end (printing events if ``watch``)."""
    async with Client(url) as client:
        # The id is chosen here so the watcher subscribes before the first event.
        run_id = uuid.uuid4().hex
        queue: asyncio.Queue[Event] = asyncio.Queue()
        sub = await _subscribe(client, run_id, queue) if watch else None
        try:
            await client.start_run(name, value, run_id=run_id)
            waiting = _follow(client, run_id, queue) if watch else _wait(client, run_id)
            try:
                finished = await asyncio.wait_for(waiting, timeout_s)
            except TimeoutError:
                raise WaitTimeoutError(run_id, timeout_s or 0.0) from None
        finally:
            if sub is not None:
                with contextlib.suppress(NatsError):
                    await sub.unsubscribe()

        final = await _terminal_run(client, run_id) if with_run else None
        return finished, final


async def _subscribe(client: Client, run_id: str, queue: asyncio.Queue[Event]) -> Any:
    async def on_event(msg: Any) -> None:
        with contextlib.suppress(ValueError):
            queue.put_nowait(decode_event(msg.data))

    return await client.nc.subscribe(history_subject(run_id), cb=on_event)


async def _wait(client: Client, run_id: str) -> Finished:
    try:
        return Finished(run_id, output=await client.wait(run_id))
    except RunFailedError as exc:
        return Finished(run_id, failure=exc)


async def _follow(client: Client, run_id: str, queue: asyncio.Queue[Event]) -> Finished:
    """Print the run's events until it ends; then how it ended."""
    while True:
        try:
            event = await asyncio.wait_for(queue.get(), _IDLE_CHECK_S)
        except TimeoutError:
            run = await client.get_run(run_id)
            if run.is_terminal:
                return _finished_from_run(run)
            continue
        output.event_line(event)
        if isinstance(event, WorkflowCompleted | WorkflowFailed | WorkflowCancelled):
            return _finished_from_event(event)


def _finished_from_event(
    event: WorkflowCompleted | WorkflowFailed | WorkflowCancelled,
) -> Finished:
    if isinstance(event, WorkflowCompleted):
        return Finished(event.run_id, output=event.output)
    if isinstance(event, WorkflowFailed):
        return Finished(
            event.run_id, failure=RunFailedError(event.run_id, "failed", event.error)
        )
    error = ErrorInfo(type="Cancelled", message=event.reason)
    return Finished(
        event.run_id, failure=RunFailedError(event.run_id, "cancelled", error)
    )


def _finished_from_run(run: Run) -> Finished:
    if run.status == RunStatus.COMPLETED:
        return Finished(run.run_id, output=run.output)
    return Finished(
        run.run_id, failure=RunFailedError(run.run_id, run.status, run.error, run)
    )


async def _terminal_run(client: Client, run_id: str) -> Run:
    """The run's snapshot once it shows the end (or the latest after a bound)."""
    deadline = time.monotonic() + _SNAPSHOT_LAG_S
    run = await client.get_run(run_id)
    while not run.is_terminal and time.monotonic() < deadline:
        await asyncio.sleep(_SNAPSHOT_POLL_S)
        run = await client.get_run(run_id)
    return run


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# --- inspect and cancel ----------------------------------------------------------


@run.command("status")
@click.argument("run_id")
@common_options
def status(run_id: str, nats_url: str | None, as_json: bool) -> None:
    """Show a run and its steps (--json: the run object)."""
    found = asyncio.run(_get_run(chosen_url(nats_url), run_id))
    if wants_json(as_json):
        output.json_line(found.public_dict())
    else:
        output.run_detail(found)


@run.command("output")
@click.argument("run_id")
@common_options
def output_(run_id: str, nats_url: str | None, as_json: bool) -> None:
    """Print a run's output as JSON (exit 1 if the run has not completed)."""
    found = asyncio.run(_get_run(chosen_url(nats_url), run_id))
    if found.status != RunStatus.COMPLETED:
        detail = f": {found.error}" if found.error is not None else ""
        output.error(f"run {run_id} is {found.status}{detail}; it has no output")
        sys.exit(EXIT_RUN_FAILED)
    output.json_line(found.output)


async def _get_run(url: str | None, run_id: str) -> Run:
    async with Client(url) as client:
        return await client.get_run(run_id)


@run.command("events")
@click.argument("run_id")
@common_options
def events(run_id: str, nats_url: str | None, as_json: bool) -> None:
    """List a run's events, oldest first (--json: an array of events)."""
    found = asyncio.run(_events(chosen_url(nats_url), run_id))
    if wants_json(as_json):
        output.json_line([e.model_dump(mode="json") for e in found])
    else:
        output.event_table(found)


async def _events(url: str | None, run_id: str) -> list[Event]:
    async with Client(url) as client:
        return await client.events(run_id)


@run.command("list")
@click.option(
    "--workflow", "workflow_name", default=None, help="Only runs of this workflow."
)
@click.option(
    "--status",
    type=click.Choice([s.value for s in RunStatus]),
    default=None,
    help="Only runs in this status.",
)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@common_options
def list_(
    workflow_name: str | None,
    status: str | None,
    limit: int,
    nats_url: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first (--json: an array of run objects)."""
    runs = asyncio.run(_list(chosen_url(nats_url), workflow_name, status, limit))
    if wants_json(as_json):
        output.json_line([r.public_dict() for r in runs])
    else:
        output.run_table(runs)


async def _list(
    url: str | None, workflow_name: str | None, status: str | None, limit: int
) -> list[Run]:
    async with Client(url) as client:
        return await client.list_runs(
            workflow=workflow_name, status=status, limit=limit
        )


@run.command("cancel")
@click.argument("run_id")
@common_options
def cancel(run_id: str, nats_url: str | None, as_json: bool) -> None:
    """Cancel a run (a finished run is left as it is)."""
    requested = asyncio.run(_cancel(chosen_url(nats_url), run_id))
    if wants_json(as_json):
        output.json_line({"run_id": run_id, "cancel_requested": requested})
    elif requested:
        output.line(f"cancel requested for run {run_id}")
    else:
        output.line(f"run {run_id} had already finished; nothing to cancel")


async def _cancel(url: str | None, run_id: str) -> bool:
    async with Client(url) as client:
        return await client.cancel(run_id)
