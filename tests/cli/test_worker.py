"""``dagnats worker MODULE:ATTR``: loading the Worker and applying the flags."""

from __future__ import annotations

import sys
import textwrap
import uuid

import pytest
from click.testing import CliRunner

from dagnats.cli import cli
from dagnats.cli.errors import EXIT_BAD_INPUT, EXIT_NATS_UNAVAILABLE
from dagnats.natsio import free_port
from dagnats.worker import Worker


@pytest.fixture
def app_dir(tmp_path, monkeypatch):
    """The current directory, where test modules are written; sys.path restored."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    return tmp_path


def write_module(folder, source: str) -> str:
    """A module with a unique name (imports are cached) holding ``source``."""
    name = f"app_{uuid.uuid4().hex[:12]}"
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize(
    ("source", "attribute", "message"),
    [
        pytest.param("", "", "must look like 'module:attribute'", id="no-colon"),
        pytest.param("", "worker", "has no attribute 'worker'", id="no-attribute"),
        pytest.param("worker = 42\n", "worker", "is a int, not", id="not-a-worker"),
        pytest.param(
            "def worker():\n    raise RuntimeError('no config')\n",
            "worker",
            "RuntimeError: no config",
            id="factory-raises",
        ),
        pytest.param(
            "import no_such_dependency_xyz\n",
            "worker",
            "No module named 'no_such_dependency_xyz'",
            id="import-fails",
        ),
        pytest.param("def broken(:\n", "worker", "SyntaxError", id="syntax-error"),
    ],
)
def test_a_target_that_is_no_worker_exits_2_saying_why(
    app_dir, source, attribute, message
):
    name = write_module(app_dir, source)
    target = f"{name}:{attribute}" if attribute else name

    result = invoke("worker", target)

    assert result.exit_code == EXIT_BAD_INPUT
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_module_exits_2_naming_it(app_dir):
    result = invoke("worker", "no_such_module_xyz:worker")

    assert result.exit_code == EXIT_BAD_INPUT
    assert "cannot import 'no_such_module_xyz'" in result.stderr


def test_flags_and_url_are_applied_before_run(app_dir, monkeypatch):
    name = write_module(
        app_dir,
        """
        from dagnats import Worker

        def make():
            return Worker("nats://from-code:4222")
        """,
    )
    ran: list[Worker] = []
    monkeypatch.setattr(Worker, "run", lambda self: ran.append(self))

    result = invoke(
        "worker",
        f"{name}:make",
        "--nats-url",
        "nats://127.0.0.1:4333",
        "--max-in-flight",
        "3",
        "--ack-wait",
        "2.5",
        "--drain-timeout",
        "7",
    )

    assert result.exit_code == 0, result.stderr
    [worker] = ran
    assert worker.nats_url == "nats://127.0.0.1:4333"
    assert (worker.max_in_flight, worker.ack_wait_s, worker.drain_timeout_s) == (
        3,
        2.5,
        7.0,
    )


def test_unreachable_nats_exits_3_naming_the_url(app_dir):
    name = write_module(
        app_dir,
        """
        from dagnats import Worker

        worker = Worker()
        worker.register("noop", lambda ctx: None)
        """,
    )
    url = f"nats://127.0.0.1:{free_port()}"

    result = invoke("worker", f"{name}:worker", "--nats-url", url)

    assert result.exit_code == EXIT_NATS_UNAVAILABLE
    assert url in result.stderr
