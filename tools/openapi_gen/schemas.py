"""JSON Schemas of pydantic types, as OpenAPI 3.0 schema objects under ``#/components/schemas``.

pydantic writes JSON Schema 2020-12; OpenAPI 3.0.3's schema object is an older dialect:

- ``anyOf: [X, {type: null}]`` becomes ``X`` with ``nullable: true`` (a reference is
  inlined there: a sibling ``nullable`` of ``$ref`` would be ignored, and validators do
  not apply it through ``allOf``);
- ``const: v`` becomes ``enum: [v]``; ``examples: [v, ...]`` becomes ``example: v``;
- a ``$ref`` with siblings (a field's description) becomes ``allOf: [{$ref}]`` beside them;
- ``title`` is dropped (names are the components' keys); a model's config ``title`` names
  its component (``CallbackIn`` is ``CallbackRequest`` on the wire);
- keys come in one fixed order, so the output is stable.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode

REF_PREFIX = "#/components/schemas/"
NULL = {"type": "null"}
# Keywords of JSON Schema 2020-12 that OpenAPI 3.0 lacks and nothing here converts.
UNSUPPORTED = frozenset(
    {"prefixItems", "if", "then", "else", "dependentRequired", "dependentSchemas", "unevaluatedProperties", "$id"}
)
KEY_ORDER = (
    "$ref",
    "allOf",
    "type",
    "format",
    "nullable",
    "description",
    "enum",
    "default",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "items",
    "required",
    "properties",
    "additionalProperties",
    "oneOf",
    "anyOf",
    "not",
    "discriminator",
    "example",
)
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
SCHEMA_VALUES = ("items", "additionalProperties", "not")

Input = tuple[str, JsonSchemaMode, Any]
"""A key, ``validation`` (requests, parameters) or ``serialization`` (responses), a type."""


def component_schemas(inputs: Iterable[Input]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The OpenAPI schema of each input (by key; a model is a ``$ref``), and every component
    they refer to, by name."""
    listed = [(key, mode, TypeAdapter(kind)) for key, mode, kind in inputs]
    tops, definitions = TypeAdapter.json_schemas(listed, ref_template=REF_PREFIX + "{model}")
    defs: dict[str, Any] = dict(definitions.get("$defs", {}))
    renames = _component_names(defs)
    defs = {renames.get(name, name): _renamed(schema, renames) for name, schema in defs.items()}
    converted = {name: to_openapi(defs[name], defs) for name in sorted(defs)}
    by_key = {key: to_openapi(_renamed(schema, renames), defs) for (key, _), schema in tops.items()}
    return by_key, converted


def _component_names(defs: Mapping[str, Any]) -> dict[str, str]:
    """Components named by their model's ``title`` where it differs from the class name."""
    renames: dict[str, str] = {}
    for name, schema in defs.items():
        title = schema.get("title")
        if isinstance(title, str) and title != name and "properties" in schema:
            renames[name] = title
    taken = [renames.get(name, name) for name in defs]
    clashes = sorted({name for name in taken if taken.count(name) > 1})
    if clashes:
        raise ValueError(f"two schemas would share the component name(s) {clashes}: give the models distinct titles")
    return renames


def _renamed(schema: Any, renames: Mapping[str, str]) -> Any:
    """``schema`` with references (and discriminator mappings) to renamed components fixed."""
    if isinstance(schema, list):
        return [_renamed(item, renames) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str):
            result[key] = _rename_ref(value, renames)
        elif key == "mapping" and isinstance(value, dict):
            result[key] = {tag: _rename_ref(ref, renames) for tag, ref in value.items()}
        else:
            result[key] = _renamed(value, renames)
    return result


def _rename_ref(ref: str, renames: Mapping[str, str]) -> str:
    name = ref.removeprefix(REF_PREFIX)
    return REF_PREFIX + renames.get(name, name)


def to_openapi(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """One JSON Schema (2020-12, as pydantic writes it) as an OpenAPI 3.0 schema object."""
    unsupported = UNSUPPORTED & set(schema)
    if unsupported:
        raise ValueError(f"no OpenAPI 3.0 form for {sorted(unsupported)} in {schema}")
    if NULL in schema.get("anyOf", []):
        return _nullable(schema, defs)
    result = dict(_keyword(key, value, defs) for key, value in schema.items() if key != "title")
    if "$ref" in result and len(result) > 1:
        result["allOf"] = [{"$ref": result.pop("$ref")}]
    if "default" in result and result["default"] is None and not result.get("nullable"):
        if _accepts_anything(result):
            result["nullable"] = True  # `Any = None`: any JSON value, null included
        else:
            del result["default"]
    return _ordered(result)


def _keyword(key: str, value: Any, defs: Mapping[str, Any]) -> tuple[str, Any]:
    """One keyword of a schema, its value converted where it holds schemas."""
    if key == "properties":
        return key, {name: to_openapi(item, defs) for name, item in value.items()}
    if key in SCHEMA_VALUES and isinstance(value, dict):
        return key, to_openapi(value, defs)
    if key in SCHEMA_LISTS:
        return key, [to_openapi(item, defs) for item in value]
    if key == "const":
        return "enum", [value]
    if key == "examples":
        return "example", value[0]
    return key, copy.deepcopy(value)


def _nullable(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    branches = [branch for branch in schema["anyOf"] if branch != NULL]
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    if len(branches) == 1:
        branch = branches[0]
        if set(branch) == {"$ref"}:
            branch = defs[branch["$ref"].removeprefix(REF_PREFIX)]
        return to_openapi({**branch, **rest, "nullable": True}, defs)
    return to_openapi({**rest, "anyOf": branches, "nullable": True}, defs)


def _accepts_anything(schema: Mapping[str, Any]) -> bool:
    return not {"type", "$ref", "allOf", "anyOf", "oneOf", "enum"} & set(schema)


def _ordered(schema: Mapping[str, Any]) -> dict[str, Any]:
    rank = {key: index for index, key in enumerate(KEY_ORDER)}
    return {key: schema[key] for key in sorted(schema, key=lambda key: (rank.get(key, len(rank)), key))}


def referenced(document: Any) -> set[str]:
    """The component schemas a document part refers to (directly)."""
    found: set[str] = set()
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith(REF_PREFIX):
                    found.add(value.removeprefix(REF_PREFIX))
                elif key == "mapping" and isinstance(value, dict):
                    found.update(ref.removeprefix(REF_PREFIX) for ref in value.values())
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def reachable(roots: Any, components: Mapping[str, Any]) -> list[str]:
    """The names of the components ``roots`` refer to, directly or through other components."""
    seen: set[str] = set()
    pending = referenced(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        if name not in components:
            raise ValueError(f"reference to a missing component schema {name!r}")
        seen.add(name)
        pending |= referenced(components[name]) - seen
    return sorted(seen)
