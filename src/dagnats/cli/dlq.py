"""``dagnats dlq``: list dead letters and replay them."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from dagnats.cli import output
from dagnats.cli.errors import handles_errors, run_async
from dagnats.client import Client, DeadLetterEntry, ReplayResult

_console = Console(highlight=False, soft_wrap=True)


@click.group()
def dlq() -> None:
    """Dead letters: steps whose last attempt failed."""


@dlq.command("list")
@click.option("--run", "run_id", default=None, help="Only this run's dead letters.")
@click.option("--workflow", default=None, help="Only this workflow's dead letters.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--nats-url", envvar="NATS_URL", default=None, help="NATS server URL.")
@handles_errors
def dlq_list(
    run_id: str | None,
    workflow: str | None,
    limit: int,
    as_json: bool,
    nats_url: str | None,
) -> None:
    """List dead letters, oldest first."""

    async def fetch() -> list[DeadLetterEntry]:
        async with Client(nats_url) as client:
            return await client.dead_letters(
                run_id=run_id, workflow=workflow, limit=limit
            )

    entries = run_async(fetch())
    if as_json:
        output.json_line([e.public_dict() for e in entries])
        return
    table = Table("seq", "workflow", "run_id", "step", "attempts", "error")
    for entry in entries:
        error = f"{entry.error.get('type', '')}: {entry.error.get('message', '')}"
        table.add_row(
            str(entry.seq),
            entry.workflow,
            entry.run_id,
            entry.step_id,
            str(len(entry.attempts)),
            error,
        )
    _console.print(table)


@dlq.command("replay")
@click.argument("seq", type=int, required=False)
@click.option(
    "--run", "run_id", default=None, help="Replay the newest dead letter of this run."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--nats-url", envvar="NATS_URL", default=None, help="NATS server URL.")
@handles_errors
def dlq_replay(
    seq: int | None, run_id: str | None, as_json: bool, nats_url: str | None
) -> None:
    """Put a failed run back to running at its dead-lettered step (fresh retries)."""
    if (seq is None) == (run_id is None):
        raise click.UsageError("give either SEQ or --run ID")

    async def do() -> ReplayResult:
        async with Client(nats_url) as client:
            if run_id is not None:
                return await client.replay_run(run_id)
            assert seq is not None
            return await client.replay_dead_letter(seq)

    result = run_async(do())
    if as_json:
        output.json_line(
            {
                "seq": result.seq,
                "run_id": result.run_id,
                "step_id": result.step_id,
                "replayed": result.replayed,
                "reason": result.reason,
            }
        )
    elif result.replayed:
        output.line(
            f"replayed dead letter {result.seq}: "
            f"run {result.run_id} resumes at {result.step_id!r}"
        )
    else:
        output.line(f"nothing changed: {result.reason}")
