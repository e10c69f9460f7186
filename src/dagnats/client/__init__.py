"""Client SDK: register workflows, start and follow runs."""

from dagnats.client.client import Client
from dagnats.client.deadletters import DeadLetterEntry, ReplayResult
from dagnats.client.models import Run, StepInfo
from dagnats.client.streaming import Chunk
from dagnats.client.sync import SyncClient
from dagnats.errors import DeadLetterNotFoundError

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
