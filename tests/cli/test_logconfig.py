"""The CLI's logging: one stderr handler, text or JSON lines, undone on exit."""

from __future__ import annotations

import io
import json
import logging

from dagnats.cli.logconfig import JsonFormatter, configure_logging


def test_json_formatter_writes_one_object_per_record():
    record = logging.LogRecord(
        "dagnats.engine",
        logging.WARNING,
        __file__,
        1,
        "lease lost run_id=%s",
        ("r1",),
        None,
    )

    entry = json.loads(JsonFormatter().format(record))

    assert entry["level"] == "WARNING"
    assert entry["logger"] == "dagnats.engine"
    assert entry["message"] == "lease lost run_id=r1"
    assert entry["ts"].endswith("+00:00")


def test_configure_logging_filters_by_level_and_undo_restores(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    handlers_before, level_before = list(root.handlers), root.level

    undo = configure_logging("warning", as_json=True)
    again = configure_logging("warning", as_json=True)
    logging.getLogger("dagnats.test").warning("shown key=%d", 1)
    # The suite sets "dagnats" to DEBUG: the handler itself must filter.
    logging.getLogger("dagnats.test").info("hidden")
    again()
    undo()

    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["shown key=1"]
    assert root.handlers == handlers_before
    assert root.level == level_before
