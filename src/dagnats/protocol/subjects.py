"""NATS subject and name layout, with an injective encoding for user names.

Task types and step ids may hold dots, spaces, ``*``, ``>`` or any unicode
(SPEC Part A 23). Each is encoded into exactly one subject token: characters
in ``[A-Za-z0-9_-]`` stay, every other UTF-8 byte becomes ``~XX``. Because
``~`` itself is escaped, two different names never share an encoding, so
``render`` and ``render.gpu`` cannot collide.
"""

from __future__ import annotations

import hashlib
import re

HISTORY_STREAM = "WORKFLOW_HISTORY"
TASK_STREAM = "TASK_QUEUES"
DEAD_LETTER_STREAM = "DEAD_LETTERS"
DEFS_BUCKET = "workflow_defs"
RUNS_BUCKET = "workflow_runs"
CHECKPOINTS_BUCKET = "checkpoints"
OUTPUT_STREAM = "STEP_OUTPUT"

ENGINE_CONSUMER = "engine"
MAX_NAME_LENGTH = 128
_MAX_CONSUMER_NAME = 64

_SAFE = re.compile(rb"[A-Za-z0-9_-]")


def encode_token(name: str) -> str:
    """Return ``name`` as one subject token (injective, printable ASCII)."""
    out: list[str] = []
    for byte in name.encode("utf-8"):
        char = bytes([byte])
        out.append(char.decode() if _SAFE.fullmatch(char) else f"~{byte:02X}")
    return "".join(out)


def decode_token(token: str) -> str:
    """Invert :func:`encode_token`."""
    raw = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "~":
            raw.append(int(token[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(ord(token[i]))
            i += 1
    return raw.decode("utf-8")


def history_subject(run_id: str) -> str:
    """Subject of every event of one run."""
    return f"history.{run_id}"


def task_subject(task_type: str, run_id: str) -> str:
    """Subject a task of ``task_type`` for ``run_id`` is published on."""
    return f"task.{encode_token(task_type)}.{run_id}"


def task_filter(task_type: str) -> str:
    """Consumer filter matching every task of ``task_type``."""
    return f"task.{encode_token(task_type)}.*"


def dead_letter_subject(workflow: str, run_id: str, step_id: str) -> str:
    """Subject of the dead letter of one step of one run."""
    return f"dead.{encode_token(workflow)}.{run_id}.{encode_token(step_id)}"


def stream_subject(run_id: str, step_id: str) -> str:
    """Subject of the output chunks a step streams."""
    return f"stream.{run_id}.{encode_token(step_id)}"


def consumer_name(task_type: str) -> str:
    """Durable consumer name of a task type (valid as a file name too)."""
    encoded = encode_token(task_type)
    name = f"task_{encoded}"
    if len(name) <= _MAX_CONSUMER_NAME:
        return name
    digest = hashlib.sha256(task_type.encode()).hexdigest()[:24]
    return f"task_{encoded[:32]}_{digest}"


def kv_key(name: str) -> str:
    """A KV key for a user name (KV keys forbid ``~``; ``=`` never occurs raw)."""
    return encode_token(name).replace("~", "=")


def run_key(run_id: str) -> str:
    """KV key of a run's snapshot in ``workflow_runs``."""
    return f"run.{run_id}"


def checkpoint_key(run_id: str, step_id: str) -> str:
    """KV key of a step's checkpoint in ``checkpoints``."""
    return f"{run_id}.{kv_key(step_id)}"


def notice_subject(run_id: str) -> str:
    """Core subject on which the engine tells workers an attempt was superseded."""
    return f"dagnats.notice.{run_id}"
