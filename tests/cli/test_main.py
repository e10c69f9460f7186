"""The ``dagnats`` entry point: its public names, help, version and usage errors."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

from click.testing import CliRunner

import dagnats.cli
from dagnats.cli import cli
from dagnats.cli.errors import EXIT_BAD_INPUT, EXIT_OK


def test_public_names():
    assert dagnats.cli.__all__ == ["cli", "main"]


def test_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])

    assert result.exit_code == EXIT_OK
    for command in ("serve", "worker", "workflow", "run", "dlq"):
        assert f"  {command} " in result.stdout


def test_every_run_and_workflow_command_takes_json_and_nats_url():
    runner = CliRunner()
    commands = {
        "run": ("start", "status", "output", "events", "list", "cancel"),
        "workflow": ("register", "list", "show"),
    }
    for group, names in commands.items():
        for name in names:
            text = runner.invoke(cli, [group, name, "--help"]).stdout
            assert "--json" in text, (group, name)
            assert "--nats-url" in text, (group, name)


def test_version_is_the_package_version():
    result = CliRunner().invoke(cli, ["--version"])

    assert version("dagnats") in result.stdout


def test_an_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["launch"])

    assert result.exit_code == EXIT_BAD_INPUT
    assert "No such command 'launch'" in result.stderr


def test_python_dash_m_dagnats_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "dagnats", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == EXIT_OK
    assert done.stdout.startswith("Usage: dagnats")
