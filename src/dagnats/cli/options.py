"""The options every command shares, ``--json`` and ``--nats-url``, and their values.

Each may be given on the command or on the group (``dagnats --json run
list``); the command's own value wins, then the group's, then ``$NATS_URL``
(read by the group option), then ``nats://127.0.0.1:4222``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.core import ParameterSource

F = TypeVar("F", bound=Callable[..., Any])

NATS_URL_HELP = "NATS server URL (default: $NATS_URL or nats://127.0.0.1:4222)."
JSON_HELP = "Machine-readable output: JSON on stdout."


def json_option(func: F) -> F:
    """Add ``--json`` (parameter ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help=JSON_HELP)(func)


def nats_url_option(func: F) -> F:
    """Add ``--nats-url`` (parameter ``nats_url``), without an env fallback.

    ``$NATS_URL`` is read by the group option, so an explicit group value
    is not overridden by the environment.
    """
    return click.option("--nats-url", default=None, help=NATS_URL_HELP)(func)


def common_options(func: F) -> F:
    """``--json`` and ``--nats-url``: for every command that talks to NATS."""
    return json_option(nats_url_option(func))


def chosen_url(value: str | None) -> str | None:
    """The URL to use: the command's ``value``, else the group's (or env)."""
    if value:
        return value
    found = _root_params().get("nats_url")
    return str(found) if found else None


def explicit_group_nats_url() -> str | None:
    """The group's ``--nats-url`` only if typed on the command line (not env)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None
    root = ctx.find_root()
    if root.get_parameter_source("nats_url") != ParameterSource.COMMANDLINE:
        return None
    found = root.params.get("nats_url")
    return str(found) if found else None


def wants_json(flag: bool) -> bool:
    """True if ``--json`` was given on the command or on the group."""
    return flag or bool(_root_params().get("as_json"))


def _root_params() -> dict[str, Any]:
    ctx = click.get_current_context(silent=True)
    return ctx.find_root().params if ctx is not None else {}


def log_level(own: str | None, default: str) -> str:
    """The logging level: the command's, else the group's, else ``default``."""
    params = _root_params()
    if own:
        return own.upper()
    if params.get("log_level"):
        return str(params["log_level"]).upper()
    return "DEBUG" if params.get("debug") else default
