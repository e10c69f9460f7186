"""The async Client: register workflows, start, inspect, wait for and cancel runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, NotFoundError

from dagnats.client.deadletters import (
    DeadLetterEntry,
    ReplayResult,
    get_dead_letter,
    list_dead_letters,
    replay,
)
from dagnats.client.history import fold_events, read_events
from dagnats.client.models import Run
from dagnats.client.streaming import Chunk, stream_chunks
from dagnats.dag import WorkflowDef, parse_workflow, parse_workflow_file
from dagnats.dag.snapshot import run_to_dict
from dagnats.errors import (
    InputError,
    RunFailedError,
    RunNotFoundError,
    WaitTimeoutError,
    WorkflowNotFoundError,
)
from dagnats.natsio import connect, ensure_resources
from dagnats.protocol import (
    DEFS_BUCKET,
    HISTORY_STREAM,
    MSG_ID_HEADER,
    RUNS_BUCKET,
    ErrorInfo,
    Event,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    decode_event,
    encode_event,
    history_subject,
    kv_key,
    run_key,
)

logger = logging.getLogger(__name__)

_SNAPSHOT_POLL_S = 1.0

WorkflowSource = str | Path | dict[str, Any] | WorkflowDef


class Client:
    """Talks to dagnats through NATS; use ``async with Client(url) as client``.

    Every method raises :class:`~dagnats.errors.NatsUnavailableError` when
    NATS cannot be reached at connect time.
    """

    def __init__(
        self, nats_url: str | None = None, *, nc: NatsClient | None = None
    ) -> None:
        self.nats_url = nats_url
        self._nc = nc
        self._own_connection = nc is None
        self._ready = False
        self._runs_kv: Any = None

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Connect and make sure the streams and buckets exist."""
        if self._nc is None:
            self._nc = await connect(self.nats_url, name="dagnats-client")
        if not self._ready:
            await ensure_resources(self._nc.jetstream())
            self._ready = True

    async def close(self) -> None:
        """Close the connection if this client opened it."""
        if self._own_connection and self._nc is not None:
            with contextlib.suppress(NatsError):
                await self._nc.drain()
            self._nc = None
            self._ready = False
            self._runs_kv = None

    @property
    def nc(self) -> NatsClient:
        """The underlying NATS connection."""
        if self._nc is None:
            raise RuntimeError("Client is not connected; use `async with Client(...)`")
        return self._nc

    # --- workflows ------------------------------------------------------------

    async def register_workflow(self, source: WorkflowSource) -> WorkflowDef:
        """Validate and store a definition (file path, JSON dict or model).

        Raises:
            WorkflowValidationError: the definition is invalid (all problems).
        """
        defn = _as_definition(source)
        kv = await self.nc.jetstream().key_value(DEFS_BUCKET)
        body = json.dumps(defn.to_json_dict()).encode()
        await kv.put(kv_key(defn.name), body)
        logger.info("workflow registered name=%s steps=%d", defn.name, len(defn.steps))
        return defn

    async def get_workflow(self, name: str) -> WorkflowDef:
        """The registered definition of ``name``.

        Raises:
            WorkflowNotFoundError: no workflow of that name.
        """
        kv = await self.nc.jetstream().key_value(DEFS_BUCKET)
        try:
            entry = await kv.get(kv_key(name))
        except KeyNotFoundError:
            raise WorkflowNotFoundError(name) from None
        if not entry.value:
            raise WorkflowNotFoundError(name)
        return WorkflowDef.model_validate(json.loads(entry.value))

    async def list_workflows(self) -> list[WorkflowDef]:
        """Every registered definition, sorted by name."""
        kv = await self.nc.jetstream().key_value(DEFS_BUCKET)
        found: list[WorkflowDef] = []
        for key in await _keys(kv):
            with contextlib.suppress(KeyNotFoundError):
                entry = await kv.get(key)
                if entry.value:
                    found.append(WorkflowDef.model_validate(json.loads(entry.value)))
        return sorted(found, key=lambda d: d.name)

    # --- runs -------------------------------------------------------------------

    async def start_run(
        self, workflow: str, input: Any = None, *, run_id: str | None = None
    ) -> str:
        """Start a run of ``workflow`` and return its id at once.

        The run is pinned to the definition registered now.

        Raises:
            WorkflowNotFoundError: the workflow is not registered.
            InputError: the input is not JSON or is too large.
        """
        defn = await self.get_workflow(workflow)
        run_id = run_id or uuid.uuid4().hex
        event = WorkflowStarted(
            run_id=run_id, workflow=defn.to_json_dict(), input=input
        )
        body = _encoded_start(event, self.nc.max_payload)
        await self.nc.jetstream().publish(
            history_subject(run_id), body, headers={MSG_ID_HEADER: event.msg_id}
        )
        logger.info("run started run_id=%s workflow=%s", run_id, workflow)
        return run_id

    async def start_runs(
        self, workflow: str, inputs: list[Any], *, chunk_size: int = 512
    ) -> list[str]:
        """Start one run per input, pipelined; returns the run ids in order.

        Every start is stored before this returns (each publish is
        acknowledged); up to ``chunk_size`` are in flight at once.

        Raises:
            WorkflowNotFoundError: the workflow is not registered.
            InputError: an input is not JSON or is too large.
        """
        defn = (await self.get_workflow(workflow)).to_json_dict()
        js = self.nc.jetstream()
        run_ids: list[str] = []
        for start in range(0, len(inputs), chunk_size):
            events = [
                WorkflowStarted(run_id=uuid.uuid4().hex, workflow=defn, input=value)
                for value in inputs[start : start + chunk_size]
            ]
            bodies = [_encoded_start(event, self.nc.max_payload) for event in events]
            await asyncio.gather(
                *(
                    js.publish(
                        history_subject(e.run_id),
                        body,
                        headers={MSG_ID_HEADER: e.msg_id},
                    )
                    for e, body in zip(events, bodies, strict=True)
                )
            )
            run_ids.extend(e.run_id for e in events)
        logger.info("runs started workflow=%s count=%d", workflow, len(run_ids))
        return run_ids

    async def get_run(self, run_id: str) -> Run:
        """The current state of a run.

        Raises:
            RunNotFoundError: no run has that id.
        """
        snapshot = await self._snapshot(run_id)
        if snapshot is not None:
            return snapshot
        # Not snapshotted yet: the history stream is the truth (DESIGN §1).
        state = fold_events(await read_events(self.nc.jetstream(), run_id))
        if state is None:
            raise RunNotFoundError(run_id)
        return Run.model_validate(run_to_dict(state, with_definition=False))

    async def _snapshot(self, run_id: str) -> Run | None:
        if self._runs_kv is None:
            self._runs_kv = await self.nc.jetstream().key_value(RUNS_BUCKET)
        try:
            entry = await self._runs_kv.get(run_key(run_id))
        except KeyNotFoundError:
            return None
        return Run.model_validate(json.loads(entry.value)) if entry.value else None

    async def _has_history(self, run_id: str) -> bool:
        try:
            await self.nc.jetstream().get_last_msg(
                HISTORY_STREAM, history_subject(run_id)
            )
        except NotFoundError:
            return False
        return True

    def stream(
        self, run_id: str, step_id: str | None = None, *, follow: bool = True
    ) -> AsyncIterator[Chunk]:
        """Chunks a run's steps streamed, in order from the first one.

        ``async for chunk in client.stream(run_id):`` yields every chunk
        (``chunk.step_id``, ``chunk.attempt``, ``chunk.data``) even when
        called late, and ends when the step (or, without ``step_id``, the
        run) resolves; with ``follow=False`` it ends after what is stored.
        """
        return stream_chunks(self.nc, run_id, step_id, follow=follow)

    async def events(self, run_id: str) -> list[Event]:
        """Every event of a run, oldest first.

        Raises:
            RunNotFoundError: no run has that id.
        """
        found = await read_events(self.nc.jetstream(), run_id)
        if not found:
            raise RunNotFoundError(run_id)
        return found

    async def list_runs(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        limit: int = 1000,
    ) -> list[Run]:
        """Runs, newest first, optionally filtered by workflow and status."""
        kv = await self.nc.jetstream().key_value(RUNS_BUCKET)
        runs: list[Run] = []
        for key in await _keys(kv):
            with contextlib.suppress(KeyNotFoundError):
                entry = await kv.get(key)
                if not entry.value:
                    continue
                run = Run.model_validate(json.loads(entry.value))
                if workflow and run.workflow != workflow:
                    continue
                if status and run.status != status:
                    continue
                runs.append(run)
        runs.sort(key=lambda r: r.created_at, reverse=True)
        return runs[:limit]

    async def cancel(self, run_id: str, reason: str = "cancelled by request") -> bool:
        """Ask the engine to cancel a run; False if it had already finished.

        Raises:
            RunNotFoundError: no run has that id.
        """
        run = await self.get_run(run_id)
        if run.is_terminal:
            return False
        event = WorkflowCancelled(run_id=run_id, reason=reason)
        await self.nc.jetstream().publish(
            history_subject(run_id),
            encode_event(event),
            headers={MSG_ID_HEADER: event.msg_id},
        )
        return True

    async def wait(self, run_id: str, timeout: float | None = None) -> Any:
        """Wait for a run to finish and return its output.

        Raises:
            RunFailedError: the run failed or was cancelled (carries the error).
            WaitTimeoutError: it did not finish within ``timeout`` seconds.
            RunNotFoundError: no run has that id.
        """
        queue, sub = await self._follow(run_id)
        try:
            run = await self._snapshot(run_id)
            if run is not None and run.is_terminal:
                return _output_or_raise(run)
            if run is None and not await self._has_history(run_id):
                raise RunNotFoundError(run_id)
            return await asyncio.wait_for(self._terminal(queue, run_id), timeout)
        except TimeoutError:
            raise WaitTimeoutError(run_id, timeout or 0.0) from None
        finally:
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()

    # --- dead letters -------------------------------------------------------

    async def dead_letters(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        limit: int = 100,
    ) -> list[DeadLetterEntry]:
        """Dead letters (oldest first), optionally of one run or workflow."""
        js = self.nc.jetstream()
        return await list_dead_letters(
            js, run_id=run_id, workflow=workflow, limit=limit
        )

    async def replay_dead_letter(self, seq: int) -> ReplayResult:
        """Put the failed run of dead letter ``seq`` back to running at its step.

        The step gets a fresh retry budget. Replaying an entry twice, or one
        whose run is not failed, changes nothing: ``replayed`` is False and
        ``reason`` says why.

        Raises:
            DeadLetterNotFoundError: no dead letter has that sequence.
        """
        js = self.nc.jetstream()
        entry = await get_dead_letter(js, seq)
        status = (await self.get_run(entry.run_id)).status if entry.run_id else ""
        result = await replay(js, entry, status)
        if result.replayed:
            await self._until_not_failed(entry.run_id)
        return result

    async def _until_not_failed(self, run_id: str) -> None:
        """Return once the engine applied a replay (bounded: 10 s)."""
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if (await self.get_run(run_id)).status != "failed":
                return
            await asyncio.sleep(0.05)

    async def replay_run(self, run_id: str) -> ReplayResult:
        """Replay the newest dead letter of a failed run.

        Raises:
            RunNotFoundError: the run has no dead letter.
        """
        entries = await self.dead_letters(run_id=run_id, limit=10_000)
        if not entries:
            raise RunNotFoundError(run_id)
        return await self.replay_dead_letter(entries[-1].seq)

    async def run(
        self, workflow: str, input: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Start a run and wait for its output (``start_run`` then ``wait``)."""
        run_id = uuid.uuid4().hex
        # Following before starting: no event can be missed, so no lookup
        # of the snapshot is needed (one round trip less per run).
        queue, sub = await self._follow(run_id)
        try:
            await self.start_run(workflow, input, run_id=run_id)
            return await asyncio.wait_for(self._terminal(queue, run_id), timeout)
        except TimeoutError:
            raise WaitTimeoutError(run_id, timeout or 0.0) from None
        finally:
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()

    async def _follow(self, run_id: str) -> tuple[asyncio.Queue[Event], Any]:
        """A queue fed with the run's events as they are published."""
        queue: asyncio.Queue[Event] = asyncio.Queue()

        async def on_event(msg: Any) -> None:
            with contextlib.suppress(ValueError):
                queue.put_nowait(decode_event(msg.data))

        return queue, await self.nc.subscribe(history_subject(run_id), cb=on_event)

    async def _terminal(self, queue: asyncio.Queue[Event], run_id: str) -> Any:
        """The output once the run ends: from its events, or its snapshot.

        The snapshot is re-read every second too, because an event published
        before we subscribed (a cancellation, say) is never delivered to us.
        """
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), _SNAPSHOT_POLL_S)
            except TimeoutError:
                run = await self._snapshot(run_id)
                if run is not None and run.is_terminal:
                    return _output_or_raise(run)
                continue
            if _is_terminal_event(event):
                # Return once get_run() shows it too (the snapshot follows
                # the event by a moment), so callers read consistent state.
                final = await self._terminal_snapshot(run_id)
                if final is not None:
                    return _output_or_raise(final)
                return _output_of_event(event, run_id)

    async def _terminal_snapshot(self, run_id: str) -> Run | None:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            run = await self._snapshot(run_id)
            if run is not None and run.is_terminal:
                return run
            await asyncio.sleep(0.002)
        return None


def _is_terminal_event(event: Event) -> bool:
    return isinstance(event, WorkflowCompleted | WorkflowFailed | WorkflowCancelled)


def _output_of_event(event: Event, run_id: str) -> Any:
    if isinstance(event, WorkflowCompleted):
        return event.output
    if isinstance(event, WorkflowFailed):
        raise RunFailedError(run_id, "failed", event.error)
    reason = getattr(event, "reason", "")
    raise RunFailedError(
        run_id, "cancelled", ErrorInfo(type="Cancelled", message=reason)
    )


def _output_or_raise(run: Run) -> Any:
    if run.status == "completed":
        return run.output
    raise RunFailedError(run.run_id, run.status, run.error, run)


def _as_definition(source: WorkflowSource) -> WorkflowDef:
    if isinstance(source, WorkflowDef):
        return source
    if isinstance(source, dict):
        return parse_workflow(source)
    return parse_workflow_file(Path(source))


def _encoded_start(event: WorkflowStarted, max_payload: int) -> bytes:
    try:
        body = encode_event(event)
    except ValueError as exc:
        raise InputError(f"run input is not JSON: {exc}") from exc
    if len(body) > max_payload:
        raise InputError(
            f"run input is too large: the start event is {len(body)} bytes and NATS "
            f"accepts at most {max_payload}; pass a reference (a URL or object key) "
            "instead of the data"
        )
    return body


async def _keys(kv: Any) -> list[str]:
    try:
        return list(await kv.keys())
    except NotFoundError:
        return []
