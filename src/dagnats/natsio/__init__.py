"""NATS plumbing: connections, the embedded server, streams and buckets."""

from dagnats.natsio.connection import DEFAULT_URL, connect, resolve_url
from dagnats.natsio.resources import ensure_resources
from dagnats.natsio.server import (
    EmbeddedServer,
    default_data_dir,
    free_port,
    server_binary,
)

__all__ = [
    "DEFAULT_URL",
    "EmbeddedServer",
    "connect",
    "default_data_dir",
    "ensure_resources",
    "free_port",
    "resolve_url",
    "server_binary",
]
