"""``python -m bench``: run every scenario, print and save one table."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import scenarios
from bench.harness import median
from dagnats.natsio import server_binary

RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"


def _sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "drain": 2000,
            "enqueue": 1000,
            "latency": 50,
            "three": (200, 30),
            "hb": (200, 5.0),
            "replay": 20_000,
            "repeats": 1,
        }
    return {
        "drain": 20_000,
        "enqueue": 5000,
        "latency": 200,
        "three": (1000, 100),
        "hb": (1000, 30.0),
        "replay": 100_000,
        "repeats": 3,
    }


async def _measure(name: str, repeats: int, make: Any) -> dict[str, float]:
    runs: list[dict[str, float]] = []
    for index in range(repeats):
        print(f"[bench] {name} {index + 1}/{repeats}", file=sys.stderr, flush=True)
        runs.append(await make())
    keys = sorted({key for run in runs for key in run})
    return {key: median([run[key] for run in runs if key in run]) for key in keys}


async def run_all(
    quick: bool, only: set[str]
) -> list[tuple[str, str, float, float, str]]:
    size = _sizes(quick)
    reps = size["repeats"]
    rows: list[tuple[str, str, float, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="dagnats-bench-logs-") as tmp:
        logs = Path(tmp)

        def want(name: str) -> bool:
            return not only or name in only

        if want("drain"):
            r = await _measure(
                "drain", reps, lambda: scenarios.drain(size["drain"], logs)
            )
            rows.append(
                (
                    f"drain ({size['drain']} queued tasks, 1 worker)",
                    "tasks/s",
                    r["dagnats"],
                    r["raw"],
                    "≥ 0.5 × raw",
                )
            )
            rows.append(
                (
                    f"engine peak RSS after {size['drain']} runs",
                    "MiB",
                    r["engine_rss_mib"],
                    float("nan"),
                    "-",
                )
            )
        if want("enqueue"):
            r = await _measure(
                "enqueue", reps, lambda: scenarios.enqueue(size["enqueue"], logs)
            )
            rows.append(
                (
                    f"enqueue {size['enqueue']} runs, awaited",
                    "runs/s",
                    r["dagnats"],
                    r["raw"],
                    "-",
                )
            )
            rows.append(
                (
                    f"enqueue {size['enqueue']} runs, bulk",
                    "runs/s",
                    r["dagnats_bulk"],
                    r["raw_bulk"],
                    "-",
                )
            )
        if want("latency"):
            r = await _measure(
                "latency", reps, lambda: scenarios.latency(size["latency"], logs)
            )
            rows.append(
                (
                    "one-step run latency p50",
                    "ms",
                    r["dagnats_p50"],
                    r["raw_p50"],
                    "≤ 2.5 × raw",
                )
            )
            rows.append(
                ("one-step run latency p99", "ms", r["dagnats_p99"], r["raw_p99"], "-")
            )
            rows.append(
                (
                    "idle worker peak RSS",
                    "MiB",
                    r["worker_idle_rss_mib"],
                    float("nan"),
                    "≤ 60 MiB",
                )
            )
        if want("three"):
            conc, seq = size["three"]
            r = await _measure(
                "three", reps, lambda: scenarios.three_steps(conc, seq, logs)
            )
            rows.append(
                (
                    f"three-step DAG, {conc} at once",
                    "runs/s",
                    r["dagnats_runs_s"],
                    r["raw_runs_s"],
                    "≥ 0.5 × raw",
                )
            )
            rows.append(
                (
                    "three-step DAG one at a time p50",
                    "ms",
                    r["dagnats_p50"],
                    r["raw_p50"],
                    "-",
                )
            )
            rows.append(
                (
                    "three-step DAG one at a time p99",
                    "ms",
                    r["dagnats_p99"],
                    r["raw_p99"],
                    "-",
                )
            )
        if want("fanout"):
            rows.append(
                (
                    "fan-out, 1,000-item map step",
                    "-",
                    float("nan"),
                    float("nan"),
                    "skipped: map step not supported yet",
                )
            )
        if want("heartbeats"):
            tasks, window = size["hb"]
            r = await _measure(
                "heartbeats", 1, lambda: scenarios.heartbeats(tasks, window, logs)
            )
            rows.append(
                (
                    f"heartbeats, {tasks} in flight, AckWait 30 s",
                    "% of a core",
                    r["dagnats_cpu_pct"],
                    float("nan"),
                    "≤ 2 %",
                )
            )
        if want("replay"):
            r = await _measure(
                "replay", reps, lambda: scenarios.replay(size["replay"], logs)
            )
            rows.append(
                (
                    f"engine start-up fold, {size['replay']} events",
                    "events/s",
                    r["dagnats_events_s"],
                    float("nan"),
                    "≥ 20,000/s",
                )
            )
    return rows


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def render(rows: list[tuple[str, str, float, float, str]], seconds: float) -> str:
    lines = [
        "| scenario | unit | dagnats | raw nats-py | dagnats / raw | target |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name, unit, ours, raw, target in rows:
        ratio = "-" if (raw != raw or ours != ours or not raw) else f"{ours / raw:.2f}"
        lines.append(
            f"| {name} | {unit} | {_fmt(ours)} | {_fmt(raw)} | {ratio} | {target} |"
        )
    lines.append("")
    lines.append(_machine() + f" Whole run: {seconds:.0f} s. Medians of the repeats.")
    return "\n".join(lines)


def _machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    cores = len(
        [
            ln
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("processor")
        ]
    )
    version = subprocess.run(
        [server_binary(), "--version"], capture_output=True, text=True
    ).stdout.strip()
    today = dt.date.today().isoformat()
    return f"Measured {today} on {model}, {cores} cores, Python {platform.python_version()}, {version}."


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated: drain,enqueue,latency,three,fanout,heartbeats,replay",
    )
    args = parser.parse_args()
    only = {name for name in args.only.split(",") if name}
    started = time.perf_counter()
    rows = asyncio.run(run_all(args.quick, only))
    table = render(rows, time.perf_counter() - started)
    print(table)
    if not args.quick and not only:
        RESULTS.write_text("# dagnats benchmark\n\n" + table + "\n")


if __name__ == "__main__":
    main()
