"""``dagnats worker MODULE:ATTR``: run the Worker an application module defines."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from dagnats.cli.logconfig import configure_logging, log_level_option
from dagnats.cli.options import (
    chosen_url,
    json_option,
    log_level,
    nats_url_option,
    wants_json,
)
from dagnats.errors import ConfigurationError
from dagnats.worker import Worker


@click.command()
@click.argument("target", metavar="MODULE:ATTR")
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    default=None,
    help="Tasks run at once.",
)
@click.option(
    "--ack-wait",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Lease of a task in seconds (renewed by heartbeats).",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds running tasks may take to finish after SIGTERM.",
)
@log_level_option
@nats_url_option
@json_option
def worker(
    target: str,
    max_in_flight: int | None,
    ack_wait: float | None,
    drain_timeout: float | None,
    level: str | None,
    nats_url: str | None,
    as_json: bool,
) -> None:
    """Run the Worker object (or factory) named by MODULE:ATTR until SIGTERM.

    MODULE is imported with the current directory on sys.path, so
    ``dagnats worker app.tasks:worker`` works from a project root. With
    --json, log lines are JSON. Exits 2 if MODULE:ATTR cannot be loaded.
    """
    click.get_current_context().call_on_close(
        configure_logging(log_level(level, "INFO"), as_json=wants_json(as_json))
    )
    found = load_worker(target)
    found.configure(
        nats_url=chosen_url(nats_url),
        max_in_flight=max_in_flight,
        ack_wait=ack_wait,
        drain_timeout=drain_timeout,
    )
    found.run()


def load_worker(target: str) -> Worker:
    """Import ``module:attribute`` and return the Worker it names or makes.

    Raises:
        ConfigurationError: the target is malformed, cannot be imported, or
            is neither a Worker nor a callable returning one.
    """
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(
            f"worker target {target!r} must look like 'module:attribute', "
            "e.g. 'app.tasks:worker'"
        )
    found: Any = getattr(_imported(module_name), attribute, None)
    if found is None:
        raise ConfigurationError(
            f"module {module_name!r} has no attribute {attribute!r}; "
            "name the Worker object (or a function returning one) after the colon"
        )

    if not isinstance(found, Worker) and callable(found):
        found = _called(target, found)
    if not isinstance(found, Worker):
        raise ConfigurationError(
            f"{target!r} is a {type(found).__name__}, not a dagnats Worker"
        )
    return found


def _imported(module_name: str) -> Any:
    """The module, imported with the current directory on ``sys.path``."""
    cwd = str(Path.cwd())
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        # Boundary with user code: any failure while importing it is reported.
        raise ConfigurationError(
            f"cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc


def _called(target: str, factory: Any) -> Any:
    """What the factory ``target`` returns when called without arguments."""
    try:
        return factory()
    except Exception as exc:
        # Boundary with user code, as for the import.
        raise ConfigurationError(
            f"calling {target!r} to make the worker failed: {type(exc).__name__}: {exc}"
        ) from exc
