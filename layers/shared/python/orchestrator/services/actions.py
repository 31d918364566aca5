"""The action catalog and two-phase prepare (SPEC §4): what the project's nodes declare, and
what a dispatch would do, without writing anything."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from orchestrator.domain.dispatch import Declaration, check_hook_integrity
from orchestrator.domain.models import ActionParameter, Permission
from orchestrator.errors import HookIntegrityViolation
from orchestrator.services.access import authorize_project
from orchestrator.services.context import Context
from orchestrator.services.dispatch import DispatchCommand, resolve_cohort

JSON_SCHEMA_TYPES = {"string", "integer", "number", "boolean", "object", "array"}


def input_schema(parameters: tuple[ActionParameter, ...]) -> dict[str, Any]:
    """A JSON Schema for the parameters a declaration accepts (unknown ones are refused)."""
    properties: dict[str, Any] = {}
    for parameter in parameters:
        spec: dict[str, Any] = {"type": parameter.type if parameter.type in JSON_SCHEMA_TYPES else "string"}
        if parameter.description:
            spec["description"] = parameter.description
        if parameter.default is not None:
            spec["default"] = parameter.default
        properties[parameter.name] = spec
    return {
        "type": "object",
        "properties": properties,
        "required": [p.name for p in parameters if p.required],
        "additionalProperties": False,
    }


def catalog(ctx: Context, subject: str, project_id: str) -> list[dict[str, Any]]:
    """Every builtin and hook the project's active nodes declare, with node counts and, for
    hooks, the checksum state against the pinned baseline."""
    project = authorize_project(ctx.tenancy, subject, project_id, Permission.READ)
    declared: dict[tuple[str, str], list[tuple[str, Declaration]]] = defaultdict(list)
    for node in ctx.nodes.iter_project_nodes(project.id):
        if not node.is_active:
            continue
        for builtin in node.capabilities.builtin_actions:
            declared[("builtin", builtin.name)].append((node.id, builtin))
        for hook in node.capabilities.hooks:
            declared[("hook", hook.name)].append((node.id, hook))
    items = []
    for (kind, name), entries in sorted(declared.items()):
        first = entries[0][1]
        item: dict[str, Any] = {
            "name": name,
            "type": kind,
            "description": first.description,
            "parameters": [p.model_dump() for p in first.parameters],
            "input_schema": input_schema(first.parameters),
            "dangerous": any(d.dangerous for _, d in entries),
            "node_count": len(entries),
        }
        if kind == "hook":
            baseline = ctx.hook_baselines.get(project.id, name)
            drifting = sorted(node_id for node_id, d in entries if getattr(d, "checksum", None) != baseline)
            item["checksum"] = {
                "baseline": baseline,
                "state": "no_baseline" if baseline is None else ("drift" if drifting else "consistent"),
                "drifting_nodes": drifting if baseline is not None else [],
            }
        items.append(item)
    return items


def prepare(ctx: Context, subject: str, project_id: str, command: DispatchCommand) -> dict[str, Any]:
    """Phase one of a dispatch: the input schema, defaults and the cohort it would hit."""
    project = authorize_project(ctx.tenancy, subject, project_id, Permission.READ)
    members = resolve_cohort(ctx, project, command)
    first = members[0].declaration
    result: dict[str, Any] = {
        "action": command.action,
        "type": command.type,
        "input_schema": input_schema(first.parameters),
        "defaults": {p.name: p.default for p in first.parameters if p.default is not None},
        "requires_confirmation": any(m.declaration.dangerous for m in members),
        "cohort": {
            "count": len(members),
            "nodes": [{"node_id": m.node.id, "hostname": m.node.hostname} for m in members],
        },
    }
    if command.type == "hook":
        baseline = ctx.hook_baselines.get(project.id, command.action)
        try:
            check_hook_integrity(command.action, members, baseline)
            result["hook"] = {"baseline": baseline, "drifting_nodes": []}
        except HookIntegrityViolation as violation:
            result["hook"] = {"baseline": baseline, "drifting_nodes": violation.extensions["drifting_nodes"]}
    return result
