"""Hand-written nats-py equivalents: the JetStream limit dagnats is compared with.

Run as ``python -m bench.raw MODE URL`` in its own process:
``drain`` acks every message of ``rawtask.>`` until told to stop;
``reply`` answers each task with a result on its reply subject;
``chain`` forwards ``rawchain.a`` → ``rawchain.b`` → ``rawchain.c`` → result.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

import nats
from nats.js.api import AckPolicy, ConsumerConfig

BATCH = 256


async def _consume(js, subject: str, durable: str, handle) -> None:  # type: ignore[no-untyped-def]
    config = ConsumerConfig(
        durable_name=durable, ack_policy=AckPolicy.EXPLICIT, max_ack_pending=20_000
    )
    sub = await js.pull_subscribe(
        subject, durable=durable, stream="RAWBENCH", config=config
    )
    while True:
        try:
            msgs = await sub.fetch(BATCH, timeout=0.05)
        except TimeoutError:
            continue
        for msg in msgs:
            await handle(msg)


async def main(mode: str, url: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    if mode == "drain":

        async def ack(msg):  # type: ignore[no-untyped-def]
            await msg.ack()

        await _consume(js, "rawtask.>", "raw-drain", ack)
    elif mode == "reply":

        async def reply(msg):  # type: ignore[no-untyped-def]
            await nc.publish(msg.headers["Reply-To"], msg.data)
            await msg.ack()

        await _consume(js, "rawreply.>", "raw-reply", reply)
    elif mode == "chain":
        nexts = {"rawchain.a": "rawchain.b", "rawchain.b": "rawchain.c"}

        async def forward(msg):  # type: ignore[no-untyped-def]
            target = nexts.get(msg.subject)
            if target:
                await js.publish(target, msg.data, headers=msg.headers)
            else:
                await nc.publish(msg.headers["Reply-To"], msg.data)
            await msg.ack()

        await _consume(js, "rawchain.>", "raw-chain", forward)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(sys.argv[1], sys.argv[2]))
