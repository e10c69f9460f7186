"""Dead letters: list the failed steps stored in DEAD_LETTERS and replay them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from dagnats.client.history import read_events, read_messages
from dagnats.errors import DeadLetterNotFoundError
from dagnats.protocol import (
    DEAD_LETTER_STREAM,
    MSG_ID_HEADER,
    StepReplayed,
    encode_event,
    encode_token,
    history_subject,
)


@dataclass(frozen=True, slots=True)
class DeadLetterEntry:
    """One dead letter: the failed step, its error and every attempt."""

    seq: int
    workflow: str
    run_id: str
    step_id: str
    task: str
    error: dict[str, Any]
    attempts: list[dict[str, Any]] = field(default_factory=list)
    input: Any = None
    dead_lettered_at: float = 0.0

    def public_dict(self) -> dict[str, Any]:
        """The JSON shape of ``dagnats dlq list --json``."""
        return {
            "seq": self.seq,
            "workflow": self.workflow,
            "run_id": self.run_id,
            "step_id": self.step_id,
            "task": self.task,
            "error": self.error,
            "attempts": self.attempts,
            "input": self.input,
            "dead_lettered_at": self.dead_lettered_at,
        }


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay did: ``replayed`` False means nothing changed (see ``reason``)."""

    seq: int
    run_id: str
    step_id: str
    replayed: bool
    reason: str


async def list_dead_letters(
    js: JetStreamContext,
    *,
    run_id: str | None = None,
    workflow: str | None = None,
    limit: int = 100,
) -> list[DeadLetterEntry]:
    """Dead letters, oldest first, filtered by run or workflow."""
    if run_id:
        subject = f"dead.*.{run_id}.*"
    elif workflow:
        subject = f"dead.{encode_token(workflow)}.>"
    else:
        subject = "dead.>"
    msgs = await read_messages(js, DEAD_LETTER_STREAM, subject, limit)
    return [_entry(msg.metadata.sequence.stream, msg.data, msg.headers) for msg in msgs]


async def get_dead_letter(js: JetStreamContext, seq: int) -> DeadLetterEntry:
    """The dead letter stored at ``seq``.

    Raises:
        DeadLetterNotFoundError: nothing is stored there.
    """
    try:
        raw = await js.get_msg(DEAD_LETTER_STREAM, seq)
    except NotFoundError:
        raise DeadLetterNotFoundError(seq) from None
    if raw.data is None:
        raise DeadLetterNotFoundError(seq)
    return _entry(seq, raw.data, raw.headers)


async def replay(
    js: JetStreamContext, entry: DeadLetterEntry, run_status: str
) -> ReplayResult:
    """Revive the failed run of ``entry`` at its step with a fresh retry budget."""
    if not entry.run_id:
        return _refused(
            entry, "this dead letter holds an undecodable task; it cannot be replayed"
        )
    if run_status != "failed":
        return _refused(
            entry,
            f"run {entry.run_id} is {run_status}; only a failed run can be replayed",
        )
    if await _already_replayed(js, entry):
        return _refused(entry, f"dead letter {entry.seq} was already replayed")
    event = StepReplayed(
        run_id=entry.run_id, step_id=entry.step_id, dead_letter_seq=entry.seq
    )
    await js.publish(
        history_subject(entry.run_id),
        encode_event(event),
        headers={MSG_ID_HEADER: event.msg_id},
    )
    return ReplayResult(entry.seq, entry.run_id, entry.step_id, True, "replayed")


async def _already_replayed(js: JetStreamContext, entry: DeadLetterEntry) -> bool:
    for event in await read_events(js, entry.run_id):
        if isinstance(event, StepReplayed) and event.dead_letter_seq == entry.seq:
            return True
    return False


def _refused(entry: DeadLetterEntry, reason: str) -> ReplayResult:
    return ReplayResult(entry.seq, entry.run_id, entry.step_id, False, reason)


def _entry(seq: int, data: bytes, headers: dict[str, str] | None) -> DeadLetterEntry:
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if not isinstance(body, dict) or "run_id" not in body:
        # An undecodable task (SPEC Part A 24): what we know is in the headers.
        headers = headers or {}
        error = {"type": "InvalidPayload", "message": headers.get("Dagnats-Error", "")}
        task = headers.get("Dagnats-Task", "")
        return DeadLetterEntry(
            seq, "_invalid", "", "", task, error, [], data.decode(errors="replace")
        )
    return DeadLetterEntry(
        seq=seq,
        workflow=str(body.get("workflow", "")),
        run_id=str(body["run_id"]),
        step_id=str(body.get("step_id", "")),
        task=str(body.get("task", "")),
        error=dict(body.get("error") or {}),
        attempts=list(body.get("attempts") or []),
        input=body.get("input"),
        dead_lettered_at=float(body.get("dead_lettered_at", 0.0)),
    )
