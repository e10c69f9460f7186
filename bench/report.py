"""The results table (markdown) and the facts about the machine it was measured on."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from bench.measure import median
from bench.model import Row
from bench.processes import ROOT
from bench.runner import Outcome
from dagnats.natsio import server_binary

_HEADER = (
    "| scenario | unit | dagnats | raw nats-py | dagnats / raw | target | met |",
    "|---|---|---:|---:|---:|---|---|",
)


_PROCESSES = (
    "processes: every measurement gets a fresh nats-server (file storage, "
    "127.0.0.1, port 0). The runner holds the client and the clocks; the engine "
    "(`dagnats serve --nats-url URL --http-port 0`), the worker (`dagnats "
    "worker bench.workers:...`) and the raw consumers (`python -m bench.raw`) "
    "each run in their own process, except in replay, where the Engine runs "
    "in the runner."
)


def table(outcomes: list[Outcome]) -> str:
    """One markdown table: medians of the repeats, the ratio, the target."""
    lines = list(_HEADER)
    partial = False
    for outcome in outcomes:
        for row in outcome.scenario.rows:
            line, is_partial = _row_line(outcome, row)
            lines.append(line)
            partial = partial or is_partial
    if partial:
        lines += ["", "\\* some repeats timed out or failed: median of the others."]
    return "\n".join(lines)


def _row_line(outcome: Outcome, row: Row) -> tuple[str, bool]:
    if row.skipped:
        return f"| {row.label} | {row.unit} | {row.skipped} | | | | |", False
    ours, ours_text, ours_partial = _cell(outcome, row.ours)
    if row.raw is None:
        raw, raw_text, raw_partial = None, row.raw_note, False
    else:
        raw, raw_text, raw_partial = _cell(outcome, row.raw)
    ratio = f"{ours / raw:.2f}" if ours is not None and raw else "-"
    target, met = "-", "-"
    if row.target is not None:
        target = row.target.text
        if ours is not None:
            met = "yes" if row.target.is_met(ours, raw) else "no"
    cells = [row.label, row.unit, ours_text, raw_text, ratio, target, met]
    return "| " + " | ".join(cells) + " |", ours_partial or raw_partial


def _cell(outcome: Outcome, key: str) -> tuple[float | None, str, bool]:
    """(median or None, its text, whether some repeats are missing)."""
    values = outcome.samples.get(key, [])
    timeouts, errors = outcome.failures(key)
    if not values:
        return None, "timeout" if timeouts else "error" if errors else "-", False
    value = median(values)
    partial = len(values) < outcome.repeats
    return value, _number(value) + ("\\*" if partial else ""), partial


def _number(value: float) -> str:
    if value != value:  # NaN: not measurable in this run
        return "-"
    if value.is_integer():
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def notes(outcomes: list[Outcome]) -> str:
    """How each scenario is measured, one bullet each."""
    return "\n".join(f"- {n}" for o in outcomes for n in o.scenario.notes)


def machine_facts(load_before: float) -> list[str]:
    """CPU, cores, load, Python, nats-server, nats-py, dagnats commit and date."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line]
    cores = sum(1 for line in cpuinfo if line.startswith("processor"))
    return [
        f"CPU: {models[0] if models else 'unknown'}",
        f"cores: {cores} (usable by this process: {len(os.sched_getaffinity(0))})",
        f"1-minute load average: {load_before:.2f} before the run, "
        f"{os.getloadavg()[0]:.2f} after (anything else running adds noise)",
        f"Python {platform.python_version()}, nats-py {metadata.version('nats-py')}",
        _output([server_binary(), "--version"]),
        f"dagnats commit: {_commit()}",
        f"date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
    ]


def _commit() -> str:
    head = _output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _output(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"])
    return f"{head} (src/ has uncommitted changes)" if dirty else head


def _output(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return done.stdout.strip() or "unknown"


def document(
    outcomes: list[Outcome], facts: list[str], run_s: float, heading: str
) -> str:
    """The results file: heading, table, how it was measured, the machine."""
    parts = [
        f"# {heading}",
        "",
        table(outcomes),
        "",
        f"Whole run: {run_s:.0f} s. Values are medians of the repeats; targets "
        "are recorded, never asserted.",
        "",
        "## How each scenario is measured",
        "",
        f"- {_PROCESSES}",
        notes(outcomes),
        "",
        "## Machine",
        "",
        *(f"- {fact}" for fact in facts),
    ]
    return "\n".join(parts) + "\n"
