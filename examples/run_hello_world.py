"""`make run`: serve, a worker, and the hello-world workflow to completion.

Starts the embedded NATS server and the engine in this process, a worker in
another process (as a user would run it), registers the unchanged DagNats
file ``hello-world.json``, runs it with input "Alice", prints the output and
shuts everything down.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from dagnats import Client
from dagnats.engine import Engine
from dagnats.natsio import EmbeddedServer, connect

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "workflows" / "hello-world.json"


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="dagnats-run-") as data_dir:
        async with EmbeddedServer(Path(data_dir), port=0) as server:
            print(f"embedded NATS at {server.url}")
            nc = await connect(server.url)
            engine = Engine(nc)
            await engine.start()
            env = {**os.environ, "NATS_URL": server.url}
            worker = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited
                [
                    sys.executable,
                    "-m",
                    "dagnats",
                    "worker",
                    "examples.hello_world:worker",
                ],
                cwd=ROOT,
                env=env,
            )
            try:
                async with Client(server.url) as client:
                    await client.register_workflow(WORKFLOW)
                    run_id = await client.start_run("hello-world", "Alice")
                    print(f"run {run_id} started")
                    output = await client.wait(run_id, timeout=60)
                    print(f"output: {json.dumps(output)}")
            finally:
                worker.terminate()
                worker.wait(timeout=30)
                await engine.stop()
                await nc.drain()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
