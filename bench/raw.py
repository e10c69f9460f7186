"""The hand-written nats-py equivalent: its stream, and its consumer process.

``python -m bench.raw MODE URL`` runs one consumer process until SIGTERM and
prints ``ready`` once its consumers exist:

- ``drain``: fetch in batches, acknowledge every message;
- ``reply``: answer each message on the subject in its ``Reply-To`` header;
- ``chain``: a consumer per step, ``rawchain.a`` → ``.b`` → ``.c`` → reply.

Idle consumers long-poll for one message and busy ones fetch a batch, the
way a careful hand-written consumer (and dagnats' worker) does.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StreamConfig

STREAM = "RAWBENCH"
DRAIN_SUBJECT = "rawtask.noop"
REPLY_SUBJECT = "rawreply.task"
CHAIN_SUBJECTS = ("rawchain.a", "rawchain.b", "rawchain.c")
REPLY_HEADER = "Reply-To"

BATCH = 256
PIPELINE_CHUNK = 512  # as Client.start_runs
_IDLE_POLL_S = 5.0
_BUSY_POLL_S = 0.02
_LIFETIME_S = 1800.0  # a bound only: the runner stops it long before

Handle = Callable[[Msg], Awaitable[None]]


async def ensure_stream(js: Any) -> None:
    """The work-queue stream every raw scenario uses."""
    await js.add_stream(
        StreamConfig(
            name=STREAM,
            subjects=["rawtask.>", "rawreply.>", "rawchain.>"],
            retention=RetentionPolicy.WORK_QUEUE,
        )
    )


def task_body(index: int) -> bytes:
    """A small JSON task, about the size of a dagnats run input."""
    return b'{"task":"noop","n":%d}' % index


async def publish_pipelined(
    js: Any, subject: str, bodies: list[bytes], headers: dict[str, str] | None = None
) -> None:
    """Publish ``bodies`` with up to 512 acknowledgements outstanding."""
    for start in range(0, len(bodies), PIPELINE_CHUNK):
        chunk = bodies[start : start + PIPELINE_CHUNK]
        await asyncio.gather(*(js.publish(subject, b, headers=headers) for b in chunk))


async def _pull_forever(sub: Any, handle: Handle, concurrent: bool) -> None:
    idle = True
    for _ in range(10**9):  # bounded by the process lifetime
        try:
            if idle:
                msgs = await sub.fetch(1, timeout=_IDLE_POLL_S)
            else:
                msgs = await sub.fetch(BATCH, timeout=_BUSY_POLL_S)
        except TimeoutError:
            idle = True
            continue
        idle = False
        if concurrent:
            await asyncio.gather(*(handle(msg) for msg in msgs))
        else:
            for msg in msgs:
                await handle(msg)


async def _subscribe(js: Any, subject: str, durable: str) -> Any:
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=30.0,
        max_ack_pending=20_000,
    )
    return await js.pull_subscribe(
        subject, durable=durable, stream=STREAM, config=config
    )


async def _loops(mode: str, nc: Any) -> list[Coroutine[Any, Any, None]]:
    js = nc.jetstream()

    async def ack(msg: Msg) -> None:
        await msg.ack()

    async def reply(msg: Msg) -> None:
        await nc.publish((msg.headers or {})[REPLY_HEADER], msg.data)
        await msg.ack()

    def forward_to(subject: str) -> Handle:
        async def forward(msg: Msg) -> None:
            await js.publish(subject, msg.data, headers=msg.headers)
            await msg.ack()

        return forward

    if mode == "drain":
        sub = await _subscribe(js, DRAIN_SUBJECT, "raw-drain")
        return [_pull_forever(sub, ack, concurrent=False)]
    if mode == "reply":
        sub = await _subscribe(js, REPLY_SUBJECT, "raw-reply")
        return [_pull_forever(sub, reply, concurrent=True)]
    a, b, c = CHAIN_SUBJECTS
    steps = [(a, forward_to(b)), (b, forward_to(c)), (c, reply)]
    loops = []
    for subject, handle in steps:
        sub = await _subscribe(js, subject, f"raw-{subject.rsplit('.', 1)[1]}")
        loops.append(_pull_forever(sub, handle, concurrent=True))
    return loops


async def main(mode: str, url: str) -> None:
    """Consume in ``mode`` until SIGTERM (or the lifetime bound)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    nc = await nats.connect(url, name=f"raw-{mode}")
    tasks = [asyncio.create_task(work) for work in await _loops(mode, nc)]
    print("ready", flush=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), _LIFETIME_S)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await nc.close()


if __name__ == "__main__":
    if sys.argv[1:2] not in (["drain"], ["reply"], ["chain"]) or len(sys.argv) != 3:
        sys.exit("usage: python -m bench.raw drain|reply|chain NATS_URL")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
