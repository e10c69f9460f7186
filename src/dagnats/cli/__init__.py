"""The ``dagnats`` command line."""

from dagnats.cli.main import cli, main

__all__ = ["cli", "main"]
