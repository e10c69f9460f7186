"""The ``dagnats`` command: workflows, runs, and the long-running processes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dagnats.cli import output
from dagnats.cli.errors import EXIT_RUN_FAILED, handles_errors, run_async
from dagnats.cli.dlq import dlq
from dagnats.cli.serve import serve, worker
from dagnats.client import Client, Run
from dagnats.dag import parse_workflow_file
from dagnats.errors import InputError, RunFailedError
from dagnats.protocol import decode_event, history_subject


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` and ``--nats-url`` on every command that talks to NATS."""
    func = click.option(
        "--json", "as_json", is_flag=True, help="Machine-readable output."
    )(func)
    func = click.option(
        "--nats-url",
        envvar="NATS_URL",
        default=None,
        help="NATS URL (default: $NATS_URL or nats://127.0.0.1:4222).",
    )(func)
    return func


@click.group()
@click.version_option(package_name="dagnats")
@click.option(
    "--log-level", default="WARNING", show_default=True, help="Logging level on stderr."
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def cli(log_level: str | None, debug: bool) -> None:
    """Durable DAG workflows and a task queue on NATS JetStream."""
    long_running = click.get_current_context().invoked_subcommand in ("serve", "worker")
    level = (
        "DEBUG"
        if debug
        else (log_level or ("INFO" if long_running else "WARNING")).upper()
    )
    logging.basicConfig(
        level=getattr(logging, level, logging.WARNING),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("nats").setLevel(logging.CRITICAL)


cli.add_command(serve)
cli.add_command(worker)
cli.add_command(dlq)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="dagnats")


# --- workflow --------------------------------------------------------------------


@cli.group()
def workflow() -> None:
    """Register, list and check workflow definitions."""


@workflow.command("register")
@click.argument("file", type=click.Path(path_type=Path))
@_options
@handles_errors
def workflow_register(file: Path, nats_url: str | None, as_json: bool) -> None:
    """Validate FILE and register it (re-registering changes only new runs)."""
    defn = parse_workflow_file(file)

    async def register() -> None:
        async with Client(nats_url) as client:
            await client.register_workflow(defn)

    run_async(register())
    if as_json:
        output.json_line(defn.to_json_dict())
    else:
        output.line(f"registered workflow {defn.name!r} ({len(defn.steps)} steps)")


@workflow.command("validate")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handles_errors
def workflow_validate(file: Path, as_json: bool) -> None:
    """Check FILE without registering it."""
    defn = parse_workflow_file(file)
    if as_json:
        output.json_line({"valid": True, "name": defn.name, "steps": len(defn.steps)})
    else:
        output.line(f"{file}: valid workflow {defn.name!r} ({len(defn.steps)} steps)")


@workflow.command("list")
@_options
@handles_errors
def workflow_list(nats_url: str | None, as_json: bool) -> None:
    """List registered workflows."""

    async def fetch() -> list[Any]:
        async with Client(nats_url) as client:
            return await client.list_workflows()

    defs = run_async(fetch())
    if as_json:
        output.json_line([d.to_json_dict() for d in defs])
    else:
        output.workflow_table(defs)


@workflow.command("show")
@click.argument("name")
@_options
@handles_errors
def workflow_show(name: str, nats_url: str | None, as_json: bool) -> None:
    """Print the registered definition of NAME."""

    async def fetch() -> Any:
        async with Client(nats_url) as client:
            return await client.get_workflow(name)

    defn = run_async(fetch())
    output.json_line(defn.to_json_dict()) if as_json else output.line(
        json.dumps(defn.to_json_dict(), indent=2)
    )


# --- run -------------------------------------------------------------------------


@cli.group()
def run() -> None:
    """Start, follow, inspect and cancel runs."""


def _parse_input(text: str | None) -> Any:
    if text is None:
        return None
    source = "INPUT"
    if text == "-":
        text, source = sys.stdin.read(), "stdin"
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            text, source = path.read_text(), str(path)
        except OSError as exc:
            raise InputError(f"cannot read input file {path}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{source} is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "quote strings, e.g. '\"Alice\"'"
        ) from exc


@run.command("start")
@click.argument("name")
@click.argument("input_text", metavar="[INPUT]", required=False)
@click.option(
    "--wait", is_flag=True, help="Wait and print the output (exit 1 if the run fails)."
)
@click.option(
    "--watch", is_flag=True, help="Print events as they happen, then the output."
)
@click.option("--timeout", type=float, default=None, help="Seconds to wait at most.")
@_options
@handles_errors
def run_start(
    name: str,
    input_text: str | None,
    wait: bool,
    watch: bool,
    timeout: float | None,
    nats_url: str | None,
    as_json: bool,
) -> None:
    """Start a run of NAME with INPUT (JSON text, @file, or - for stdin)."""
    value = _parse_input(input_text)
    run_async(_start(name, value, wait or watch, watch, timeout, nats_url, as_json))


async def _start(
    name: str,
    value: Any,
    wait: bool,
    watch: bool,
    timeout: float | None,
    url: str | None,
    as_json: bool,
) -> None:
    async with Client(url) as client:
        if not wait:
            run_id = await client.start_run(name, value)
            output.json_line({"run_id": run_id}) if as_json else output.line(run_id)
            return
        run_id = client_run_id()
        sub = await _watch(client, run_id) if watch else None
        try:
            await client.start_run(name, value, run_id=run_id)
            await _wait_and_print(client, run_id, timeout, as_json)
        finally:
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()


def client_run_id() -> str:
    """A fresh run id (so a watcher can subscribe before the run starts)."""
    import uuid

    return uuid.uuid4().hex


async def _watch(client: Client, run_id: str) -> Any:
    async def on_event(msg: Any) -> None:
        with contextlib.suppress(ValueError):
            output.event_line(decode_event(msg.data))

    return await client.nc.subscribe(history_subject(run_id), cb=on_event)


async def _wait_and_print(
    client: Client, run_id: str, timeout: float | None, as_json: bool
) -> None:
    try:
        result = await client.wait(run_id, timeout)
    except RunFailedError as exc:
        if as_json:
            run = await _final_run(client, run_id)
            output.json_line(run.public_dict())
        output.error(f"run {run_id} {exc.status}: {exc.error}")
        sys.exit(EXIT_RUN_FAILED)
    if as_json:
        output.json_line((await _final_run(client, run_id)).public_dict())
    else:
        output.json_line(result)


async def _final_run(client: Client, run_id: str) -> Run:
    """The run's snapshot once it shows the terminal status (it may lag the event)."""
    run = await client.get_run(run_id)
    for _ in range(100):
        if run.is_terminal:
            return run
        await asyncio.sleep(0.05)
        run = await client.get_run(run_id)
    return run


def _with_client(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func(client, ...)`` inside a connected client."""

    @functools.wraps(func)
    async def wrapper(url: str | None, *args: Any) -> Any:
        async with Client(url) as client:
            return await func(client, *args)

    return wrapper


@run.command("status")
@click.argument("run_id")
@_options
@handles_errors
def run_status(run_id: str, nats_url: str | None, as_json: bool) -> None:
    """Show a run and its steps."""
    found: Run = run_async(_with_client(Client.get_run)(nats_url, run_id))
    output.json_line(found.public_dict()) if as_json else output.run_detail(found)


@run.command("output")
@click.argument("run_id")
@_options
@handles_errors
def run_output(run_id: str, nats_url: str | None, as_json: bool) -> None:
    """Print a run's output as JSON (exit 1 if the run did not complete)."""
    found: Run = run_async(_with_client(Client.get_run)(nats_url, run_id))
    if found.status != "completed":
        output.error(f"run {run_id} is {found.status}; it has no output")
        sys.exit(EXIT_RUN_FAILED)
    output.json_line(found.output)


@run.command("events")
@click.argument("run_id")
@_options
@handles_errors
def run_events(run_id: str, nats_url: str | None, as_json: bool) -> None:
    """List a run's events, oldest first."""
    events = run_async(_with_client(Client.events)(nats_url, run_id))
    if as_json:
        output.json_line([e.model_dump(mode="json") for e in events])
    else:
        output.event_table(events)


@run.command("list")
@click.option(
    "--workflow", "workflow_name", default=None, help="Only runs of this workflow."
)
@click.option("--status", default=None, help="Only runs in this status.")
@click.option("--limit", type=int, default=100, show_default=True)
@_options
@handles_errors
def run_list(
    workflow_name: str | None,
    status: str | None,
    limit: int,
    nats_url: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first."""

    async def fetch(client: Client) -> list[Run]:
        return await client.list_runs(
            workflow=workflow_name, status=status, limit=limit
        )

    runs = run_async(_with_client(fetch)(nats_url))
    if as_json:
        output.json_line([r.public_dict() for r in runs])
    else:
        output.run_table(runs)


@run.command("cancel")
@click.argument("run_id")
@_options
@handles_errors
def run_cancel(run_id: str, nats_url: str | None, as_json: bool) -> None:
    """Cancel a run (no effect on a finished one)."""
    changed = run_async(_with_client(Client.cancel)(nats_url, run_id))
    if as_json:
        output.json_line({"run_id": run_id, "cancel_requested": changed})
    else:
        output.line(
            f"cancel requested for {run_id}"
            if changed
            else f"run {run_id} already finished"
        )
