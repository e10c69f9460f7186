"""The ``dagnats`` command group: global options, logging, and its subcommands.

Exit codes (one table, ``EXIT_CODES`` in :mod:`dagnats.cli.errors`): 0 ok;
1 run failed or cancelled, or a wait timed out; 2 bad input (invalid
workflow file, INPUT that is not JSON or too large, unknown workflow or
run, usage error); 3 NATS unreachable.
"""

from __future__ import annotations

import click

from dagnats.cli.dlq import dlq
from dagnats.cli.errors import EXIT_CODES, ReportingGroup
from dagnats.cli.logconfig import LEVELS, configure_logging
from dagnats.cli.logs import logs
from dagnats.cli.options import JSON_HELP, NATS_URL_HELP
from dagnats.cli.run import run
from dagnats.cli.serve import serve
from dagnats.cli.worker import worker
from dagnats.cli.workflow import workflow

__all__ = ["EXIT_CODES", "cli", "main"]


@click.group(
    cls=ReportingGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(package_name="dagnats")
@click.option("--nats-url", envvar="NATS_URL", default=None, help=NATS_URL_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option(
    "--log-level",
    type=click.Choice(LEVELS, case_sensitive=False),
    default=None,
    help="Logging level on stderr (default: WARNING; INFO for serve and worker).",
)
@click.option("--debug", is_flag=True, help="Log at DEBUG and show tracebacks.")
@click.pass_context
def cli(
    ctx: click.Context,
    nats_url: str | None,
    as_json: bool,
    log_level: str | None,
    debug: bool,
) -> None:
    """Durable DAG workflows and a task queue on NATS JetStream."""
    level = log_level or ("DEBUG" if debug else "WARNING")
    ctx.call_on_close(configure_logging(level))


cli.add_command(serve)
cli.add_command(worker)
cli.add_command(workflow)
run.add_command(logs)
cli.add_command(run)
cli.add_command(dlq)


def main() -> None:
    """Console-script entry point (also ``python -m dagnats``)."""
    cli(prog_name="dagnats")
