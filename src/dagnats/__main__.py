"""Entry point for ``python -m dagnats``."""

from dagnats.cli.main import main

main()
