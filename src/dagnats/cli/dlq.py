"""``dagnats dlq``: list dead letters and replay them."""

from __future__ import annotations

import click

from dagnats.cli import output
from dagnats.cli.errors import handles_errors, run_async
from dagnats.cli.options import chosen_url, common_options, wants_json
from dagnats.client import Client, DeadLetterEntry, ReplayResult


@click.group()
def dlq() -> None:
    """Dead letters: steps whose last attempt failed."""


@dlq.command("list")
@click.option("--run", "run_id", default=None, help="Only this run's dead letters.")
@click.option("--workflow", default=None, help="Only this workflow's dead letters.")
@click.option("--limit", type=int, default=100, show_default=True)
@common_options
@handles_errors
def dlq_list(
    run_id: str | None,
    workflow: str | None,
    limit: int,
    as_json: bool,
    nats_url: str | None,
) -> None:
    """List dead letters, oldest first (--json: an array of entries)."""
    url = chosen_url(nats_url)

    async def fetch() -> list[DeadLetterEntry]:
        async with Client(url) as client:
            return await client.dead_letters(
                run_id=run_id, workflow=workflow, limit=limit
            )

    entries = run_async(fetch())
    if wants_json(as_json):
        output.json_line([e.public_dict() for e in entries])
    else:
        output.dead_letter_table(entries)


@dlq.command("replay")
@click.argument("seq", type=click.IntRange(min=1), required=False)
@click.option(
    "--run", "run_id", default=None, help="Replay the newest dead letter of this run."
)
@common_options
@handles_errors
def dlq_replay(
    seq: int | None, run_id: str | None, as_json: bool, nats_url: str | None
) -> None:
    """Put a failed run back to running at its dead-lettered step (fresh retries)."""
    if (seq is None) == (run_id is None):
        raise click.UsageError("give either SEQ or --run ID")
    url = chosen_url(nats_url)

    async def do() -> ReplayResult:
        async with Client(url) as client:
            if run_id is not None:
                return await client.replay_run(run_id)
            assert seq is not None
            return await client.replay_dead_letter(seq)

    result = run_async(do())
    if wants_json(as_json):
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
