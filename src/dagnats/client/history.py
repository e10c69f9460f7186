"""Read a run's events from the history stream, and fold them into state."""

from __future__ import annotations

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from dagnats.dag import Limits, RunState, advance
from dagnats.protocol import HISTORY_STREAM, Event, decode_event, history_subject

_BATCH = 512
_MAX_EVENTS = 100_000


async def read_events(js: JetStreamContext, run_id: str) -> list[Event]:
    """Every event of ``run_id`` in order (empty if the run does not exist)."""
    msgs = await read_messages(js, HISTORY_STREAM, history_subject(run_id), _MAX_EVENTS)
    return [decode_event(msg.data) for msg in msgs]


async def read_messages(
    js: JetStreamContext, stream: str, subject: str, limit: int
) -> list[Msg]:
    """Up to ``limit`` stored messages of ``subject`` (wildcards allowed), in order."""
    try:
        last = await js.get_last_msg(stream, subject)
    except NotFoundError:
        return []
    last_seq = int(last.seq or 0)
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=10.0,
        filter_subject=subject,
        mem_storage=True,
    )
    sub = await js.pull_subscribe(subject, stream=stream, config=config)
    found: list[Msg] = []
    try:
        seq = 0
        while seq < last_seq and len(found) < limit:
            batch = await sub.fetch(min(_BATCH, limit - len(found)), timeout=5.0)
            for msg in batch:
                seq = msg.metadata.sequence.stream
                found.append(msg)
    finally:
        await sub.unsubscribe()
    return found


def fold_events(events: list[Event]) -> RunState | None:
    """The run state the events give (the engine's own fold)."""
    state: RunState | None = None
    for event in events:
        state = advance(state, event, Limits()).state
    return state
