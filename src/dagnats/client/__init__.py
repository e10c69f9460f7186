"""Client SDK: register workflows, start and follow runs."""

from dagnats.client.client import Client
from dagnats.client.deadletters import (
    DeadLetterEntry,
    DeadLetterNotFoundError,
    ReplayResult,
)
from dagnats.client.models import Run, StepInfo
from dagnats.client.streaming import Chunk
from dagnats.client.sync import SyncClient

__all__ = [
    "Chunk",
    "Client",
    "DeadLetterEntry",
    "DeadLetterNotFoundError",
    "ReplayResult",
    "Run",
    "StepInfo",
    "SyncClient",
]
