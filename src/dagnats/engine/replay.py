"""Rebuild run state by folding the history stream up to a sequence."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from dagnats.dag import Limits, RunState, advance
from dagnats.protocol import HISTORY_STREAM, KIND_HEADER, NO_OP_RECORDS, decode_event

logger = logging.getLogger(__name__)

_BATCH = 1024


async def replay_history(
    js: JetStreamContext, upto_seq: int, limits: Limits
) -> dict[str, RunState]:
    """Fold every history event with sequence ≤ ``upto_seq`` (no actions)."""
    runs: dict[str, RunState] = {}
    if upto_seq <= 0:
        return runs
    started = time.perf_counter()
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=30.0,
        filter_subject="history.>",
    )
    sub = await js.pull_subscribe("history.>", stream=HISTORY_STREAM, config=config)
    count = 0
    try:
        seq = 0
        while seq < upto_seq:
            try:
                msgs = await sub.fetch(_BATCH, timeout=2.0)
            except TimeoutError:
                break
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq > upto_seq:
                    break
                if msg.headers and msg.headers.get(KIND_HEADER) in NO_OP_RECORDS:
                    continue
                _fold(runs, msg.data, seq, limits)
                count += 1
    finally:
        await sub.unsubscribe()
    elapsed = time.perf_counter() - started
    logger.info(
        "history replayed events=%d runs=%d seconds=%.2f", count, len(runs), elapsed
    )
    return runs


def _fold(runs: dict[str, RunState], data: bytes, seq: int, limits: Limits) -> None:
    try:
        event = decode_event(data)
    except ValidationError:
        return  # poison events were dead-lettered when first consumed
    decision = advance(runs.get(event.run_id), event, limits)
    if decision.state is not None:
        runs[event.run_id] = replace(decision.state, last_seq=seq)
