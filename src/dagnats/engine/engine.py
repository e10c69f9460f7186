"""The orchestrator: consume history, fold events, perform actions, keep snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from dagnats.dag import Action, Limits, RunState, Timer, advance, timers
from dagnats.dag.snapshot import run_from_dict, run_to_dict
from dagnats.engine.effects import Effects
from dagnats.engine.replay import replay_history
from dagnats.engine.sizes import fit_snapshot
from dagnats.engine.timers import TimerQueue
from dagnats.natsio import ensure_resources
from dagnats.protocol import (
    ENGINE_CONSUMER,
    HISTORY_STREAM,
    KIND_HEADER,
    MSG_ID_HEADER,
    NO_OP_RECORDS,
    RUNS_BUCKET,
    Event,
    decode_event,
    run_key,
)

logger = logging.getLogger(__name__)

_RECENT_TERMINAL_RUNS = 10_000
_HEADROOM_BYTES = 4096
# Below the consumer's AckWait (30 s), so a retried batch is not redelivered.
_BATCH_RETRY_S = 20.0
_FETCH_TIMEOUT_S = 1.0
_MAX_BACKOFF_S = 5.0


class Engine:
    """Runs the event-sourced orchestrator on an existing NATS connection.

    Start it with ``await engine.start()`` (or ``async with``); it replays the
    history stream up to its consumer's ack floor, then consumes new events.
    Killing it at any point loses nothing: unacknowledged events are
    redelivered and every action it repeats is deduplicated (DESIGN §3).
    """

    def __init__(
        self, nc: NatsClient, *, limits: Limits | None = None, batch_size: int = 256
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._limits = limits or Limits()
        self._batch_size = batch_size
        self._effects = Effects(nc, self._js)
        self._runs: dict[str, RunState] = {}
        self._recent: OrderedDict[str, RunState] = OrderedDict()
        self._timers = TimerQueue(self._fire_timer)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._kv: KeyValue | None = None
        self._sub: Any = None

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def active_runs(self) -> int:
        """Runs held in memory that are not terminal."""
        return len(self._runs)

    async def start(self) -> None:
        """Create resources, replay history, then start consuming."""
        await ensure_resources(self._js)
        self._kv = await self._js.key_value(RUNS_BUCKET)
        floor = await self._ensure_consumer()
        replayed = await replay_history(self._js, floor, self._limits)
        for run_id, run in replayed.items():
            self._keep(run_id, run)
        sub = await self._js.pull_subscribe_bind(
            durable=ENGINE_CONSUMER, stream=HISTORY_STREAM
        )
        self._sub = sub
        self._tasks = [
            asyncio.create_task(self._consume(sub), name="engine-consume"),
            asyncio.create_task(self._timers.run(), name="engine-timers"),
        ]
        logger.info("engine started active_runs=%d", len(self._runs))

    async def stop(self) -> None:
        """Stop consuming; unacknowledged events stay for the next start."""
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._sub is not None:
            # Unsubscribed, an idle pull request cannot hold a later drain.
            with contextlib.suppress(NatsError):
                await self._sub.unsubscribe()
            self._sub = None
        logger.info("engine stopped")

    async def _ensure_consumer(self) -> int:
        """Adopt (or create) the engine's consumer; returns its ack floor.

        An existing consumer is used as it is: its ack floor says what was
        applied, and it redelivers the rest. A new one starts at the first
        event; runs already snapshotted are recognised and skipped.
        """
        try:
            info = await self._js.consumer_info(HISTORY_STREAM, ENGINE_CONSUMER)
        except NotFoundError:
            config = ConsumerConfig(
                durable_name=ENGINE_CONSUMER,
                name=ENGINE_CONSUMER,
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                filter_subject="history.>",
                ack_wait=30.0,
                max_ack_pending=20_000,
                max_deliver=-1,
            )
            info = await self._js.add_consumer(HISTORY_STREAM, config=config)
        return int(info.ack_floor.stream_seq if info.ack_floor else 0)

    async def _consume(self, sub: object) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                msgs = await sub.fetch(self._batch_size, timeout=_FETCH_TIMEOUT_S)  # type: ignore[attr-defined]
            except TimeoutError:
                continue
            except NatsError as exc:
                # A NATS restart or a deleted consumer: wait, re-create, resume.
                logger.warning("engine fetch failed, retrying error=%r", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                sub = self._sub = await self._rebind(sub)
                continue
            backoff = 0.1
            if not await self._apply_batch(msgs):
                await self._retry_batch(msgs)

    async def _rebind(self, sub: object) -> object:
        try:
            await self._ensure_consumer()
            return await self._js.pull_subscribe_bind(
                durable=ENGINE_CONSUMER, stream=HISTORY_STREAM
            )
        except (NatsError, TimeoutError) as exc:
            logger.warning("engine consumer not ready yet error=%r", exc)
            return sub

    async def _retry_batch(self, msgs: list[Msg]) -> None:
        """Retry the same batch before fetching further events.

        Later events are not applied (nor acknowledged) first, so the
        consumer's ack floor stays contiguous: a restart replays exactly
        what was applied. The messages' leases are renewed meanwhile.
        """
        delay_s = 0.2
        deadline = time.monotonic() + _BATCH_RETRY_S
        while time.monotonic() < deadline and not self._stopping.is_set():
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 2.0)
            for msg in msgs:
                with contextlib.suppress(NatsError, TimeoutError):
                    await msg.in_progress()
            if await self._apply_batch(msgs):
                return
        await self._nak_all(msgs)

    async def _nak_all(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            with contextlib.suppress(NatsError, TimeoutError):
                await msg.nak(delay=1.0)

    async def _apply_batch(self, msgs: list[Msg]) -> bool:
        """Fold a batch, perform its actions, save snapshots, then ack it.

        Decisions are made one event at a time (the fold is sequential);
        the resulting publishes go out pipelined, one ordered list per run,
        and each touched run is snapshotted once. Nothing is acknowledged
        before every action of the batch is stored (DESIGN §3.2); on a NATS
        error the batch is rolled back and redelivered, and the repeated
        actions are deduplicated by their message ids.
        """
        working: dict[str, RunState | None] = {}
        planned: dict[str, list[Action]] = {}
        dirty: set[str] = set()
        for msg in msgs:
            await self._fold_one(msg, working, planned, dirty)

        changed = {
            run_id: state for run_id, state in working.items() if state is not None
        }
        try:
            # Snapshots go first on the wire, so a client that sees a run's
            # final event reads its final snapshot too. They are caches: if
            # an action fails, the batch is redone from memory.
            saves = [
                self._save(changed[run_id]) for run_id in dirty if run_id in changed
            ]
            work = [(changed[run_id], actions) for run_id, actions in planned.items()]
            await asyncio.gather(*saves, self._effects.perform_batch(work))
        except (NatsError, TimeoutError) as exc:
            logger.warning("engine actions failed, batch will be retried error=%r", exc)
            return False
        for run_id, state in changed.items():
            self._keep(run_id, state)
        for msg in msgs:
            with contextlib.suppress(NatsError):
                await msg.ack()
        return True

    async def _fold_one(
        self,
        msg: Msg,
        working: dict[str, RunState | None],
        planned: dict[str, list[Action]],
        dirty: set[str],
    ) -> None:
        seq = msg.metadata.sequence.stream
        if msg.headers and msg.headers.get(KIND_HEADER) in NO_OP_RECORDS:
            return  # our own record coming back: nothing to fold
        try:
            event = decode_event(msg.data)
        except ValidationError as exc:
            await self._dead_letter_poison(msg, seq, str(exc))
            return
        run_id = event.run_id
        state = working[run_id] if run_id in working else await self._state_of(run_id)
        if state is not None and state.last_seq >= seq:
            return
        try:
            decision = advance(state, event, self._limits)
        except Exception as exc:
            # A bug in the core must not wedge every run: park the event.
            logger.exception(
                "engine failed to apply event run_id=%s seq=%d", run_id, seq
            )
            await self._dead_letter_poison(msg, seq, repr(exc))
            return
        if decision.state is None:
            return
        if decision.state is not state:
            # Only a real change is worth a snapshot: a record event coming
            # back folds to the same state, and applying it again is a no-op.
            dirty.add(run_id)
        working[run_id] = replace(decision.state, last_seq=seq)
        planned.setdefault(run_id, []).extend(decision.actions)

    async def _state_of(self, run_id: str) -> RunState | None:
        state = self._runs.get(run_id) or self._recent.get(run_id)
        if state is not None or self._kv is None:
            return state
        try:
            entry = await self._kv.get(run_key(run_id))
        except NotFoundError:
            return None
        if not entry.value:
            return None
        return run_from_dict(json.loads(entry.value))

    def _keep(self, run_id: str, run: RunState) -> None:
        if run.status.is_terminal:
            self._runs.pop(run_id, None)
            self._recent[run_id] = run
            self._recent.move_to_end(run_id)
            while len(self._recent) > _RECENT_TERMINAL_RUNS:
                self._recent.popitem(last=False)
        else:
            self._runs[run_id] = run
        self._timers.set_run_timers(run_id, timers(run))

    async def _save(self, run: RunState) -> None:
        assert self._kv is not None
        limit = self._nc.max_payload - _HEADROOM_BYTES
        body = fit_snapshot(run_to_dict(run), limit)
        await self._kv.put(run_key(run.run_id), body)

    async def _fire_timer(self, run_id: str, timer: Timer) -> None:
        logger.debug("timer fired run_id=%s event=%s", run_id, timer.event.type)
        event: Event = timer.event
        await self._effects.publish_event(event)

    async def _dead_letter_poison(self, msg: Msg, seq: int, reason: str) -> None:
        logger.error(
            "history event unusable, dead-lettered seq=%d reason=%s", seq, reason
        )
        headers = {MSG_ID_HEADER: f"dlq.history.{seq}", "Dagnats-Reason": reason[:512]}
        with contextlib.suppress(NatsError, TimeoutError):
            await self._js.publish("dead._invalid.history", msg.data, headers=headers)
        await msg.ack()
