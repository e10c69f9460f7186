"""Test helpers: an embedded server per test, engine/worker/client harness."""

from dagnats.testing.harness import (
    connected_client,
    event_kinds,
    eventually,
    running_engine,
    running_worker,
)
from dagnats.testing.server import free_port, nats_server

__all__ = [
    "connected_client",
    "event_kinds",
    "eventually",
    "free_port",
    "nats_server",
    "running_engine",
    "running_worker",
]
