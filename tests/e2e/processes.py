"""Child processes of the multi-process tests, and the log their handlers write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def spawn(args: list[str], url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    """``python -m dagnats ARGS`` against ``url``; output goes to a file."""
    env = {**os.environ, "NATS_URL": url, "DAGNATS_TEST_DIR": str(tmp_path)}
    with (tmp_path / "processes.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "dagnats", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc`` (by its own pid) if it still runs, and reap it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def handler_log(tmp_path: Path) -> list[dict[str, object]]:
    """The lines the handlers of tests/e2e/workers.py appended, in order."""
    path = tmp_path / "log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]
