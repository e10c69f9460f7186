"""``python -m bench [--quick] [--only NAME[,NAME]]``: run, print and save the table."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import report
from bench.model import Session
from bench.processes import Children
from bench.runner import run_scenarios
from bench.scenarios import all_scenarios, names

RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"
REPEATS = 3


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="dagnats against hand-written nats-py equivalents.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, one repeat (a smoke run)"
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated scenarios: {','.join(names())}"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="results file (default: bench/results/latest.md for a full "
        "run; a quick or partial run writes nothing unless given)",
    )
    args = parser.parse_args()
    unknown = set(filter(None, args.only.split(","))) - set(names())
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {names()}")
    return args


def _progress_since(started: float) -> Callable[[str], None]:
    def progress(message: str) -> None:
        elapsed = time.monotonic() - started
        print(f"[bench {elapsed:5.0f}s] {message}", file=sys.stderr, flush=True)

    return progress


async def _run(args: argparse.Namespace) -> None:
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    progress = _progress_since(started)
    wanted = set(filter(None, args.only.split(",")))
    scenarios = [s for s in all_scenarios(args.quick) if not wanted or s.name in wanted]
    with tempfile.TemporaryDirectory(prefix="dagnats-bench-logs-") as logs:
        session = Session(Children(Path(logs), progress))
        outcomes = await run_scenarios(
            scenarios, 1 if args.quick else REPEATS, session, progress
        )
    run_s = time.monotonic() - started
    print(report.table(outcomes))
    print(f"\nWhole run: {run_s:.0f} s.")

    output = args.output or (None if args.quick or wanted else RESULTS)
    if output is None:
        return
    heading = "dagnats benchmark" + (" (quick)" if args.quick else "")
    output.write_text(
        report.document(outcomes, report.machine_facts(load_before), run_s, heading)
    )
    print(f"written to {output}", file=sys.stderr)


def main() -> None:
    """Entry point of ``python -m bench``."""
    asyncio.run(_run(_arguments()))


if __name__ == "__main__":
    main()
