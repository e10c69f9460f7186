"""``dagnats workflow``: register, list, show and validate workflow definitions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from dagnats.cli import output
from dagnats.cli.options import chosen_url, common_options, json_option, wants_json
from dagnats.client import Client
from dagnats.dag import WorkflowDef, parse_workflow_file
from dagnats.errors import WorkflowValidationError


@click.group()
def workflow() -> None:
    """Register, list and check workflow definitions."""


@workflow.command("register")
@click.argument("file", type=click.Path(path_type=Path))
@common_options
def register(file: Path, nats_url: str | None, as_json: bool) -> None:
    """Validate FILE and register it (re-registering changes only new runs).

    Prints the name and step count; with --json the stored definition.
    """
    defn = parse_workflow_file(file)
    asyncio.run(_register(defn, chosen_url(nats_url)))
    if wants_json(as_json):
        output.json_line(defn.to_json_dict())
    else:
        output.line(f"registered workflow {defn.name!r} ({len(defn.steps)} steps)")


async def _register(defn: WorkflowDef, url: str | None) -> None:
    async with Client(url) as client:
        await client.register_workflow(defn)


@workflow.command("validate")
@click.argument("file", type=click.Path(path_type=Path))
@json_option
def validate(file: Path, as_json: bool) -> None:
    """Check FILE without registering it (needs no NATS server).

    Exits 2 and lists every problem with its JSON path if FILE is invalid.
    """
    try:
        defn = parse_workflow_file(file)
    except WorkflowValidationError as exc:
        if wants_json(as_json):
            found = [{"path": p.path, "message": p.message} for p in exc.problems]
            output.json_line({"valid": False, "problems": found})
        raise

    if wants_json(as_json):
        output.json_line({"valid": True, "name": defn.name, "steps": len(defn.steps)})
    else:
        output.line(f"{file}: valid workflow {defn.name!r} ({len(defn.steps)} steps)")


@workflow.command("list")
@common_options
def list_(nats_url: str | None, as_json: bool) -> None:
    """List registered workflows, by name."""
    defs = asyncio.run(_list(chosen_url(nats_url)))
    if wants_json(as_json):
        output.json_line([d.to_json_dict() for d in defs])
    else:
        output.workflow_table(defs)


async def _list(url: str | None) -> list[WorkflowDef]:
    async with Client(url) as client:
        return await client.list_workflows()


@workflow.command("show")
@click.argument("name")
@common_options
def show(name: str, nats_url: str | None, as_json: bool) -> None:
    """Print the registered definition of NAME as JSON."""
    defn = asyncio.run(_show(name, chosen_url(nats_url)))
    if wants_json(as_json):
        output.json_line(defn.to_json_dict())
    else:
        output.line(json.dumps(defn.to_json_dict(), indent=2, ensure_ascii=False))


async def _show(name: str, url: str | None) -> WorkflowDef:
    async with Client(url) as client:
        return await client.get_workflow(name)
