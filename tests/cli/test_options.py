"""Where ``--nats-url`` and ``--json`` come from: command, group, environment."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dagnats.cli import cli
from dagnats.cli.errors import EXIT_NATS_UNAVAILABLE
from dagnats.natsio import free_port


def dead_url() -> str:
    return f"nats://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(
    ("env", "group", "command", "chosen"),
    [
        pytest.param(True, False, False, "env", id="env-only"),
        pytest.param(True, True, False, "group", id="group-beats-env"),
        pytest.param(True, True, True, "command", id="command-beats-all"),
        pytest.param(False, False, True, "command", id="command-only"),
    ],
)
def test_the_nearest_nats_url_is_used(env, group, command, chosen):
    urls = {"env": dead_url(), "group": dead_url(), "command": dead_url()}
    args = ["--nats-url", urls["group"]] if group else []
    args += ["workflow", "list"]
    args += ["--nats-url", urls["command"]] if command else []
    environment = {"NATS_URL": urls["env"] if env else None}

    result = CliRunner().invoke(cli, args, env=environment)

    assert result.exit_code == EXIT_NATS_UNAVAILABLE
    assert f"cannot reach NATS at {urls[chosen]}" in result.stderr
    assert [u for u in urls.values() if u in result.stderr] == [urls[chosen]]


def test_json_may_be_given_on_the_group(tmp_path):
    path = tmp_path / "wf.json"
    path.write_text('{"name": "one", "steps": [{"id": "a", "task": "t"}]}')

    result = CliRunner().invoke(cli, ["--json", "workflow", "validate", str(path)])

    assert result.exit_code == 0, result.stderr
    assert result.stdout == '{"valid": true, "name": "one", "steps": 1}\n'
