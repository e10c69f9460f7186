"""The orchestrator: folds history events and performs the core's actions."""

from dagnats.engine.engine import Engine

__all__ = ["Engine"]
