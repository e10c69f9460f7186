"""Everything the CLI prints: rich tables for people, plain JSON for scripts.

Results go to stdout, errors and progress (``--watch`` events) to stderr, so
``dagnats run start ... --wait > out.json`` captures only the output.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dagnats.client import DeadLetterEntry, Run
from dagnats.dag import WorkflowDef
from dagnats.protocol import Event

# A pipe has no width; rich would assume 80 columns and wrap run ids.
_PIPE_WIDTH = 200
_DETAIL_WIDTH = 60


def _console(stderr: bool = False) -> Console:
    """A console on the current stdout/stderr (tests swap them per call)."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else _PIPE_WIDTH
    return Console(file=stream, stderr=stderr, highlight=False, width=width)


def json_line(value: Any) -> None:
    """Print ``value`` as one JSON document on stdout."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def line(text: str) -> None:
    """Print a plain line on stdout (flushed: callers may be waiting for it)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def error(text: str) -> None:
    """Print an error line on stderr."""
    _console(stderr=True).print(f"[bold red]error:[/] {_escape(text)}")


def problems(header: str, items: list[str]) -> None:
    """Print a header and one indented line per validation problem on stderr."""
    console = _console(stderr=True)
    console.print(f"[bold red]error:[/] {_escape(header)}")
    for item in items:
        console.print(f"  {item}", markup=False)


def ready(nats_url: str, http_url: str, as_json: bool) -> None:
    """The line ``dagnats serve`` prints once it accepts work."""
    if as_json:
        json_line({"nats_url": nats_url, "http_url": http_url})
    else:
        line(f"dagnats serving nats={nats_url} http={http_url}")


def run_detail(run: Run) -> None:
    """A run and its steps, for people."""
    console = _console()
    header = f"run {run.run_id}  workflow {run.workflow}  status {run.status}"
    console.print(header, markup=False)
    console.print(f"created {_time(run.created_at)}  finished {_time(run.finished_at)}")
    if run.error is not None:
        console.print(f"error: {run.error}", markup=False)

    table = _table("step", "status", "attempts", "output / error")
    for step_id, step in run.steps.items():
        detail = str(step.error) if step.error else _short(step.output)
        _row(table, step_id, step.status, str(step.attempts), detail)
    console.print(table)
    if run.status == "completed":
        console.print(f"output: {_short(run.output, 200)}", markup=False)


def run_table(runs: list[Run]) -> None:
    """Runs, one per row, in the order given."""
    table = _table()
    table.add_column("run_id", no_wrap=True, min_width=32)
    for name in ("workflow", "status"):
        table.add_column(name)
    for name in ("created", "finished"):
        table.add_column(name, no_wrap=True)
    for run in runs:
        _row(
            table,
            run.run_id,
            run.workflow,
            run.status,
            _time(run.created_at),
            _time(run.finished_at),
        )
    _console().print(table)


def event_table(events: list[Event]) -> None:
    """Events of a run, oldest first."""
    table = _table()
    table.add_column("time", no_wrap=True)
    table.add_column("type", no_wrap=True)
    for name in ("step", "attempt", "detail"):
        table.add_column(name)
    for event in events:
        _row(
            table,
            _time(event.ts, precise=True),
            event.type.value,
            event.step_id or "-",
            str(event.attempt + 1) if event.step_id else "-",
            _event_detail(event),
        )
    _console().print(table)


def event_line(event: Event) -> None:
    """One event as it arrives (``run start --watch``), on stderr."""
    step = f" {event.step_id}#{event.attempt + 1}" if event.step_id else ""
    detail = _event_detail(event)
    text = f"{_time(event.ts, precise=True)} {event.type.value}{step}"
    _console(stderr=True).print(f"{text} {detail}".rstrip(), markup=False)


def workflow_table(defs: list[WorkflowDef]) -> None:
    """Registered workflows."""
    table = _table("name", "version", "steps")
    for defn in defs:
        _row(table, defn.name, defn.version or "-", str(len(defn.steps)))
    _console().print(table)


def _table(*columns: str) -> Table:
    return Table(*columns, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)


def _event_detail(event: Event) -> str:
    for name in ("error", "output", "input", "reason", "worker_id"):
        value = getattr(event, name, None)
        if value is None or value == "":
            continue
        return str(value) if name == "error" else _short(value)
    return ""


def _time(value: float | None, precise: bool = False) -> str:
    if not value:
        return "-"
    moment = datetime.fromtimestamp(value, UTC)
    if precise:
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _short(value: Any, width: int = _DETAIL_WIDTH) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _escape(text: str) -> str:
    """``text`` with rich markup brackets made literal."""
    return text.replace("[", "\\[")


def _row(table: Table, *cells: str) -> None:
    """Add a row of plain text: user data (errors, names) is never markup."""
    table.add_row(*(Text(cell) for cell in cells))


def dead_letter_table(entries: list[DeadLetterEntry]) -> None:
    """Dead letters, oldest first."""
    table = _table()
    table.add_column("seq", no_wrap=True)
    table.add_column("workflow")
    table.add_column("run_id", no_wrap=True, min_width=32)
    for name in ("step", "attempts", "error"):
        table.add_column(name)
    for entry in entries:
        error = f"{entry.error.get('type', '')}: {entry.error.get('message', '')}"
        _row(
            table,
            str(entry.seq),
            entry.workflow,
            entry.run_id,
            entry.step_id,
            str(len(entry.attempts)),
            error if len(error) <= 80 else error[:79] + "…",
        )
    _console().print(table)
