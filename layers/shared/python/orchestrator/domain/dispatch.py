"""Dispatch gates (SPEC §6 steps 3-5): cohort capability filter, hook integrity, parameters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.domain.executions import ActionType
from orchestrator.domain.models import ActionParameter, BuiltinAction, CohortNode, Hook, Node
from orchestrator.errors import ConfirmationRequired, HookIntegrityViolation, InvalidParameters

Declaration = BuiltinAction | Hook


def declaration(node: Node | CohortNode, action: str, action_type: ActionType) -> Declaration | None:
    """The node's declaration of ``action`` of that type, if any."""
    declared: Iterable[Declaration] = (
        node.capabilities.builtin_actions if action_type == "builtin" else node.capabilities.hooks
    )
    return next((d for d in declared if d.name == action), None)


@dataclass(frozen=True)
class CohortMember:
    node: Node | CohortNode
    declaration: Declaration


def declaring_members(nodes: Iterable[Node | CohortNode], action: str, action_type: ActionType) -> list[CohortMember]:
    """Active nodes that declare the action (of that type)."""
    members = []
    for node in nodes:
        found = declaration(node, action, action_type) if node.is_active else None
        if found is not None:
            members.append(CohortMember(node, found))
    return members


def check_hook_integrity(hook: str, members: Sequence[CohortMember], baseline: str | None) -> None:
    """Every target's declared checksum must equal the pinned baseline; fails closed."""
    if baseline is None:
        raise HookIntegrityViolation(
            f"Hook {hook!r} has no pinned baseline checksum.", hook=hook, baseline=None, drifting_nodes=[]
        )
    drifting = [
        {"node_id": m.node.id, "hostname": m.node.hostname, "checksum": m.declaration.checksum}  # type: ignore[union-attr]
        for m in members
        if getattr(m.declaration, "checksum", None) != baseline
    ]
    if drifting:
        raise HookIntegrityViolation(
            f"{len(drifting)} target(s) declare a checksum of hook {hook!r} that differs from its baseline.",
            hook=hook,
            baseline=baseline,
            drifting_nodes=drifting,
        )


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _type_ok(kind: str, value: Any) -> bool:
    if kind in {"integer", "number"} and isinstance(value, bool):
        return False
    return isinstance(value, _JSON_TYPES.get(kind, (object,)))


def validate_parameters(parameters: Mapping[str, Any], declarations: Iterable[Declaration]) -> None:
    """Required parameters present, unknown ones refused, types respected — against every
    distinct declaration in the cohort (nodes may run different agent versions)."""
    problems: list[str] = []
    seen: set[tuple[ActionParameter, ...]] = set()
    for declared in declarations:
        if declared.parameters in seen:
            continue
        seen.add(declared.parameters)
        by_name = {p.name: p for p in declared.parameters}
        problems += [f"unknown parameter {name!r}" for name in parameters if name not in by_name]
        for spec in declared.parameters:
            if spec.name not in parameters:
                if spec.required:
                    problems.append(f"missing required parameter {spec.name!r}")
            elif not _type_ok(spec.type, parameters[spec.name]):
                problems.append(f"parameter {spec.name!r} must be of type {spec.type}")
    if problems:
        unique = sorted(set(problems))
        raise InvalidParameters("; ".join(unique) + ".", problems=unique)


def check_confirmation(declarations: Iterable[Declaration], confirmation: bool) -> None:
    if not confirmation and any(d.dangerous for d in declarations):
        raise ConfirmationRequired("This action is declared dangerous; repeat the dispatch with confirmation: true.")
