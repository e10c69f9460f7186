"""Logging set-up for the CLI: one handler on stderr, text or JSON lines."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_TEXT_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
_HANDLER_NAME = "dagnats-cli"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message (and exc)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, *, as_json: bool = False) -> Callable[[], None]:
    """Send log records at ``level`` or above to stderr; return the undo.

    A second call replaces the first one's handler. The nats client logs
    each reconnect attempt with a traceback; dagnats logs outages itself
    (one WARNING), so the client is kept quiet.
    """
    handler = logging.StreamHandler(sys.stderr)
    formatter = (
        JsonFormatter()
        if as_json
        else logging.Formatter(_TEXT_FORMAT, _TEXT_DATE_FORMAT)
    )
    handler.setFormatter(formatter)
    handler.set_name(_HANDLER_NAME)

    # The handler gets the level too: records of loggers set lower elsewhere
    # (a test's caplog, say) must not reach stderr.
    threshold = getattr(logging, level.upper(), logging.INFO)
    handler.setLevel(threshold)
    root, client = logging.getLogger(), logging.getLogger("nats")
    saved = (root.level, client.level)
    _remove_handler(root)
    root.addHandler(handler)
    root.setLevel(threshold)
    client.setLevel(logging.CRITICAL)

    def undo() -> None:
        _remove_handler(root)
        root.setLevel(saved[0])
        client.setLevel(saved[1])

    return undo


def _remove_handler(root: logging.Logger) -> None:
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)


def log_level_option(func: F) -> F:
    """``--log-level`` (parameter ``level``) of the long-running commands."""
    option = click.option(
        "--log-level",
        "level",
        type=click.Choice(LEVELS, case_sensitive=False),
        default=None,
        help="Logging level on stderr (default INFO).",
    )
    return option(func)
