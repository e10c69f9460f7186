"""``dagnats workflow``: register, list, show and validate against a real server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner, Result

from dagnats.cli import cli
from dagnats.cli.errors import EXIT_BAD_INPUT, EXIT_OK
from dagnats.dag import parse_workflow_file
from dagnats.natsio import free_port

SHARED_EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "examples"
HELLO_WORLD = SHARED_EXAMPLES / "hello-world.json"


async def invoke(*args: str) -> Result:
    """The CLI in a thread: its asyncio.run must not meet the test's loop."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def test_register_prints_name_and_step_count(nats_url):
    result = await invoke(
        "workflow", "register", str(HELLO_WORLD), "--nats-url", nats_url
    )

    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stdout == "registered workflow 'hello-world' (2 steps)\n"


async def test_register_json_prints_the_stored_definition(nats_url):
    url = ["--nats-url", nats_url]

    registered = await invoke("workflow", "register", str(HELLO_WORLD), "--json", *url)
    shown = await invoke("workflow", "show", "hello-world", "--json", *url)
    listed = await invoke("workflow", "list", "--json", *url)

    expected = parse_workflow_file(HELLO_WORLD).to_json_dict()
    assert json.loads(registered.stdout) == expected
    assert json.loads(shown.stdout) == expected
    assert json.loads(listed.stdout) == [expected]


async def test_list_and_show_print_for_people(nats_url):
    url = ["--nats-url", nats_url]
    await invoke("workflow", "register", str(HELLO_WORLD), *url)

    listed = await invoke("workflow", "list", *url)
    shown = await invoke("workflow", "show", "hello-world", *url)

    assert listed.exit_code == EXIT_OK, listed.stderr
    assert ["hello-world", "1.0", "2"] in [
        row.split() for row in listed.stdout.splitlines()
    ]
    assert json.loads(shown.stdout)["name"] == "hello-world"
    assert shown.stdout.startswith("{\n  ")


async def test_show_of_an_unregistered_workflow_exits_2(nats_url):
    result = await invoke("workflow", "show", "nowhere", "--nats-url", nats_url)

    assert result.exit_code == EXIT_BAD_INPUT
    assert "workflow 'nowhere' is not registered" in result.stderr


async def test_register_validates_before_connecting(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"name": "bad", "steps": []}')
    dead_url = f"nats://127.0.0.1:{free_port()}"

    result = await invoke("workflow", "register", str(path), "--nats-url", dead_url)

    assert result.exit_code == EXIT_BAD_INPUT
    assert "$.steps" in result.stderr


async def test_validate_json_lists_problems_with_their_paths(tmp_path):
    path = tmp_path / "bad.json"
    steps = [{"id": "a", "task": "t", "depends_on": ["ghost"], "timeout": "soon"}]
    path.write_text(json.dumps({"name": "bad", "steps": steps}))

    result = await invoke("workflow", "validate", str(path), "--json")

    assert result.exit_code == EXIT_BAD_INPUT
    report = json.loads(result.stdout)
    assert report["valid"] is False
    paths = {p["path"] for p in report["problems"]}
    assert paths == {"$.steps[0].depends_on[0]", "$.steps[0].timeout"}
    assert "$.steps[0].timeout" in result.stderr


async def test_validate_of_a_missing_file_exits_2(tmp_path):
    result = await invoke("workflow", "validate", str(tmp_path / "absent.json"))

    assert result.exit_code == EXIT_BAD_INPUT
    assert "absent.json" in result.stderr
