"""``dagnats run logs``: print the output chunks a run's steps streamed.

Chunk data goes to stdout as it is (bytes raw, text unchanged, JSON values
as one compact line), flushed chunk by chunk; a marker line on stderr shows
where each attempt of a step begins (SPEC Part A 28), so
``dagnats run logs ID > out.txt`` captures only what the handlers streamed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
from typing import Any

import click

from dagnats.cli.errors import run_async
from dagnats.cli.options import chosen_url, common_options, wants_json
from dagnats.client import Client
from dagnats.client.streaming import Chunk, stream_chunks


@click.command("logs")
@click.argument("run_id")
@click.option("--step", "step_id", default=None, help="Only the chunks of this step.")
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Wait for new chunks until the step (or run) ends.",
)
@common_options
def logs(
    run_id: str,
    step_id: str | None,
    follow: bool,
    nats_url: str | None,
    as_json: bool,
) -> None:
    """Print what the steps of run RUN_ID streamed, from the first chunk.

    Without --follow, prints the chunks stored now. --json prints one object
    per chunk: step_id, attempt (the retry count, 0 first, as in events),
    index, data, and "encoding": "base64" when data is bytes.
    """
    printer = _JsonPrinter() if wants_json(as_json) else _RawPrinter()
    try:
        run_async(_print_chunks(chosen_url(nats_url), run_id, step_id, follow, printer))
    except BrokenPipeError:
        # The reader of stdout left (`| head`): stop quietly, as `cat` does,
        # with stdout on /dev/null so the interpreter's final flush cannot fail.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


async def _print_chunks(
    url: str | None,
    run_id: str,
    step_id: str | None,
    follow: bool,
    printer: _RawPrinter | _JsonPrinter,
) -> None:
    async with Client(url) as client:
        chunks = stream_chunks(client.nc, run_id, step_id, follow=follow)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                printer.print(chunk)


class _RawPrinter:
    """Chunk data as it is on stdout; a marker on stderr per new attempt."""

    def __init__(self) -> None:
        self._attempts: dict[str, int] = {}

    def print(self, chunk: Chunk) -> None:
        """Write one chunk (and first the marker, if its attempt is new)."""
        if self._attempts.get(chunk.step_id) != chunk.attempt:
            self._attempts[chunk.step_id] = chunk.attempt
            click.echo(
                f"--- step {chunk.step_id} attempt {chunk.attempt + 1} ---", err=True
            )
        out = sys.stdout.buffer
        out.write(_raw_bytes(chunk.data))
        out.flush()


class _JsonPrinter:
    """One JSON object per chunk and line on stdout."""

    def print(self, chunk: Chunk) -> None:
        """Write one chunk as a JSON line."""
        record: dict[str, Any] = {
            "step_id": chunk.step_id,
            "attempt": chunk.attempt,
            "index": chunk.index,
        }
        if isinstance(chunk.data, bytes):
            record["data"] = base64.b64encode(chunk.data).decode("ascii")
            record["encoding"] = "base64"
        else:
            record["data"] = chunk.data
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _raw_bytes(data: bytes | str | Any) -> bytes:
    """What stdout shows of a chunk: bytes raw, text as is, JSON on one line."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    return (json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
