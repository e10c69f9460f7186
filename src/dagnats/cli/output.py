"""Everything the CLI prints: rich tables for people, plain JSON for scripts."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from dagnats.client import Run
from dagnats.dag import WorkflowDef
from dagnats.protocol import Event

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def json_line(value: Any) -> None:
    """Print ``value`` as JSON on stdout (one document)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def line(text: str) -> None:
    """Print a plain line on stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def error(text: str) -> None:
    """Print an error line on stderr."""
    _err.print(f"[bold red]error:[/] {text}", markup=True)


def problems(header: str, items: list[str]) -> None:
    """Print a list of validation problems on stderr."""
    _err.print(f"[bold red]error:[/] {header}", markup=True)
    for item in items:
        _err.print(f"  {item}", markup=False)


def stderr(text: str) -> None:
    """Print a note on stderr."""
    _err.print(text, markup=False)


def _time(value: float | None) -> str:
    if not value:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _short(value: Any, width: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def run_detail(run: Run) -> None:
    """A run and its steps, for people."""
    _out.print(
        f"run {run.run_id}  workflow {run.workflow}  status [bold]{run.status}[/]"
    )
    _out.print(f"created {_time(run.created_at)}  finished {_time(run.finished_at)}")
    if run.error is not None:
        _out.print(f"error: {run.error}", markup=False)
    table = Table("step", "status", "attempts", "output / error")
    for step_id, step in run.steps.items():
        detail = str(step.error) if step.error else _short(step.output)
        table.add_row(step_id, step.status, str(step.attempts), detail)
    _out.print(table)
    if run.status == "completed":
        _out.print(f"output: {_short(run.output, 200)}", markup=False)


def run_table(runs: list[Run]) -> None:
    """Runs, one per row."""
    table = Table("run_id", "workflow", "status", "created", "finished")
    for run in runs:
        table.add_row(
            run.run_id,
            run.workflow,
            run.status,
            _time(run.created_at),
            _time(run.finished_at),
        )
    _out.print(table)


def event_table(events: list[Event]) -> None:
    """Events of a run, oldest first."""
    table = Table("time", "type", "step", "attempt", "detail")
    for event in events:
        detail = _event_detail(event)
        step = event.step_id or "-"
        table.add_row(
            _time(event.ts), event.type.value, step, str(event.attempt + 1), detail
        )
    _out.print(table)


def _event_detail(event: Event) -> str:
    for name in ("error", "output", "reason", "worker_id"):
        value = getattr(event, name, None)
        if value:
            return str(value) if name == "error" else _short(value)
    return ""


def event_line(event: Event) -> None:
    """One event as it arrives (``run start --watch``)."""
    step = f" {event.step_id}#{event.attempt + 1}" if event.step_id else ""
    _err.print(
        f"{_time(event.ts)} {event.type.value}{step} {_event_detail(event)}",
        markup=False,
    )


def workflow_table(defs: list[WorkflowDef]) -> None:
    """Registered workflows."""
    table = Table("name", "version", "steps")
    for defn in defs:
        table.add_row(defn.name, defn.version or "-", str(len(defn.steps)))
    _out.print(table)
