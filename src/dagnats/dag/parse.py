"""Parsing of DagNats workflow JSON into a validated :class:`WorkflowDef`."""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from dagnats.dag.model import WorkflowDef
from dagnats.dag.validate import validate
from dagnats.errors import Problem, WorkflowValidationError

# Keys read at the top level of a file but not part of the definition.
SCHEMA_KEY = "$schema"
TRIGGERS_KEY = "triggers"
TRIGGERS_NOT_SUPPORTED = (
    "triggers are not supported yet; remove the key and create the trigger separately"
)

_EXPECTED = {
    "int_type": "a whole number",
    "string_type": "a string",
    "bool_type": "true or false",
    "float_type": "a number",
    "tuple_type": "an array",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
}
_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")
_MAX_SHOWN_CHARS = 80


def parse_workflow(
    data: Mapping[str, Any] | str | bytes, *, source: str | None = None
) -> WorkflowDef:
    """Parse and validate a DagNats workflow given as JSON text or decoded JSON.

    A top-level ``$schema`` key is ignored. ``source`` (a file name, say) is
    named in the error.

    Raises:
        WorkflowValidationError: the text is not JSON, or the definition has
            problems; ``problems`` lists all of them, each with its JSON path.
    """
    document = _decoded_document(data, source)
    problems = _trigger_problems(document)
    body = {k: v for k, v in document.items() if k not in (SCHEMA_KEY, TRIGGERS_KEY)}

    try:
        defn = WorkflowDef.model_validate(body)
    except ValidationError as exc:
        problems += _problems_despite_invalid_fields(body, exc)
        raise WorkflowValidationError(problems, source) from exc
    problems += validate(defn)
    if problems:
        raise WorkflowValidationError(problems, source)

    return defn


def parse_workflow_file(path: str | os.PathLike[str]) -> WorkflowDef:
    """Read a DagNats workflow file (UTF-8 JSON) and parse it.

    Raises:
        WorkflowValidationError: the file cannot be read, is not JSON, or
            holds an invalid definition.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as file:
            text = file.read()
    except OSError as exc:
        problem = Problem(
            "$", f"cannot read {source!r}: {exc.strerror}; check the path"
        )
        raise WorkflowValidationError([problem], source) from exc

    return parse_workflow(text, source=source)


def _decoded_document(
    data: Mapping[str, Any] | str | bytes, source: str | None
) -> dict[str, Any]:
    """The top-level JSON object of ``data``; raises on bad text or shape."""
    if isinstance(data, Mapping):
        return dict(data)
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        document = json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        message = (
            f"the file is not UTF-8 text (bad byte at {exc.start}); save it as UTF-8"
        )
        raise WorkflowValidationError([Problem("$", message)], source) from exc
    except json.JSONDecodeError as exc:
        message = (
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}; "
            "fix the JSON syntax there"
        )
        raise WorkflowValidationError([Problem("$", message)], source) from exc
    except ValueError as exc:
        raise WorkflowValidationError([Problem("$", str(exc))], source) from exc
    if not isinstance(document, dict):
        message = (
            f"a workflow is a JSON object, got {_json_type_name(document)}; "
            'write it as {"name": ..., "steps": [...]}'
        )
        raise WorkflowValidationError([Problem("$", message)], source)

    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON; write a number or null instead")


def _trigger_problems(document: Mapping[str, Any]) -> list[Problem]:
    """The one place that refuses workflow-file triggers, until they are supported."""
    if TRIGGERS_KEY not in document:
        return []
    return [Problem(f"$.{TRIGGERS_KEY}", TRIGGERS_NOT_SUPPORTED)]


def _problems_despite_invalid_fields(
    body: dict[str, Any], exc: ValidationError
) -> list[Problem]:
    """Type problems plus the graph problems of what remains once bad fields go."""
    errors = exc.errors()
    problems = [_problem_from_error(error) for error in errors]
    reported = {problem.path for problem in problems}

    repaired = _without_invalid_fields(body, errors)
    if repaired is None:
        return problems
    try:
        defn = WorkflowDef.model_validate(repaired)
    except ValidationError:
        return problems
    return problems + [p for p in validate(defn) if p.path not in reported]


def _without_invalid_fields(
    body: dict[str, Any], errors: Sequence[ErrorDetails]
) -> dict[str, Any] | None:
    """A copy of ``body`` without the fields pydantic refused, or None.

    None means the graph cannot be checked (a step without a usable id, or
    steps that are not a list of objects): dropping such a step would make its
    dependents report a missing dependency that is not missing.
    """
    fixed = copy.deepcopy(body)
    for error in errors:
        loc = error["loc"]
        if not loc:
            return None
        if loc[0] != "steps":
            # An empty name keeps the definition constructible; its problem is
            # already reported at the same path, so validate's one is dropped.
            if loc[0] == "name":
                fixed["name"] = ""
            else:
                fixed.pop(str(loc[0]), None)
            continue
        steps = fixed.get("steps")
        if len(loc) < 3 or loc[2] == "id" or not isinstance(steps, list):
            return None
        step = steps[int(loc[1])]
        if not isinstance(step, dict):
            return None
        step.pop(str(loc[2]), None)

    return fixed


def _problem_from_error(error: ErrorDetails) -> Problem:
    loc = error["loc"]
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}

    if kind == "extra_forbidden":
        message = _unknown_key_message(loc)
    elif kind == "missing":
        message = f"required key {loc[-1]!r} is missing; add it"
    elif kind == "value_error" and "error" in ctx:
        message = str(ctx["error"])
    elif kind == "literal_error":
        message = f"{_shown(value)} is not allowed; use {ctx.get('expected', '')}"
    elif kind in _EXPECTED:
        message = (
            f"expected {_EXPECTED[kind]}, got {_json_type_name(value)} "
            f"{_shown(value)}; write {_EXPECTED[kind]} here"
        )
    else:
        message = f"{error['msg']}; got {_shown(value)}"

    return Problem(_json_path(loc), message)


def _unknown_key_message(loc: tuple[int | str, ...]) -> str:
    key = str(loc[-1])
    allowed = _allowed_keys(loc[:-1])
    if not allowed:
        return f"unknown key {key!r}; remove it"
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r}{hint}; allowed keys: {', '.join(allowed)}"


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the object at ``loc`` may hold (empty when unknown)."""
    model: type[BaseModel] | None = WorkflowDef
    for key in loc:
        if isinstance(key, int):
            continue
        field = model.model_fields.get(key) if model else None
        model = _model_in(field.annotation) if field else None
    if model is None:
        return []
    keys = list(model.model_fields)

    return [SCHEMA_KEY, *keys] if model is WorkflowDef else keys


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation such as ``tuple[StepDef, ...] | None``."""
    if get_origin(annotation) is None and isinstance(annotation, type):
        return annotation if issubclass(annotation, BaseModel) else None
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _json_path(loc: tuple[int | str, ...]) -> str:
    parts = ["$"]
    for key in loc:
        if isinstance(key, int):
            parts.append(f"[{key}]")
        elif _IDENTIFIER.fullmatch(key):
            parts.append(f".{key}")
        else:
            parts.append(f"[{json.dumps(key, ensure_ascii=False)}]")
    return "".join(parts)


def _json_type_name(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    text = repr(value)
    if len(text) <= _MAX_SHOWN_CHARS:
        return text
    return text[: _MAX_SHOWN_CHARS - 1] + "…"
