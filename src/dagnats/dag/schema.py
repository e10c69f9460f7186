"""The JSON Schema of dagnats workflow files, generated from the models."""

from __future__ import annotations

from typing import Any

from dagnats.dag.model import WorkflowDef

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def workflow_json_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of a workflow file.

    It allows the top-level ``$schema`` key that editors use to find it.
    Rules that need the whole graph (cycles, unknown dependencies, features
    not supported yet) are not expressible here; ``parse_workflow`` checks
    them.
    """
    schema = WorkflowDef.model_json_schema(mode="validation")
    schema["properties"] = {
        "$schema": {
            "type": "string",
            "description": "Reference to this schema; ignored by dagnats.",
        },
        **schema["properties"],
    }

    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "dagnats workflow",
        **{key: value for key, value in schema.items() if key != "title"},
    }
