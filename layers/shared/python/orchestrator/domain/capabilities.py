"""Validation of the capabilities a node declares (SPEC §5)."""

from __future__ import annotations

import re

from orchestrator.domain.models import ActionParameter, Capabilities
from orchestrator.errors import (
    BuiltinActionDuplicate,
    BuiltinActionInvalid,
    HookDuplicate,
    HookInvalid,
)

ACTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
CHECKSUM = re.compile(r"^sha256:[0-9a-f]{64}$")
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


def validate_capabilities(capabilities: Capabilities) -> Capabilities:
    """Return the capabilities unchanged, or raise the spec's 422 for the first defect."""
    seen: set[str] = set()
    for index, action in enumerate(capabilities.builtin_actions):
        if not action.name.strip():
            raise BuiltinActionInvalid(f"builtin_actions[{index}]: name must not be empty.")
        if not ACTION_NAME.fullmatch(action.name):
            raise BuiltinActionInvalid(
                f"builtin_actions[{index}]: name {action.name!r} must match {ACTION_NAME.pattern}."
            )
        if action.name in seen:
            raise BuiltinActionDuplicate(f"builtin_actions[{index}]: {action.name!r} is declared twice.")
        seen.add(action.name)
        _validate_parameters(action.parameters, f"builtin_actions[{index}]", BuiltinActionInvalid)

    seen_hooks: set[str] = set()
    for index, hook in enumerate(capabilities.hooks):
        if not hook.name.strip() or not ACTION_NAME.fullmatch(hook.name):
            raise HookInvalid(f"hooks[{index}]: name must match {ACTION_NAME.pattern}.")
        if hook.name in seen_hooks:
            raise HookDuplicate(f"hooks[{index}]: {hook.name!r} is declared twice.")
        if not CHECKSUM.fullmatch(hook.checksum):
            raise HookInvalid(f"hooks[{index}]: checksum must be 'sha256:' and 64 lowercase hex digits.")
        seen_hooks.add(hook.name)
        _validate_parameters(hook.parameters, f"hooks[{index}]", HookInvalid)
    return capabilities


def _validate_parameters(
    parameters: tuple[ActionParameter, ...],
    where: str,
    error: type[BuiltinActionInvalid] | type[HookInvalid],
) -> None:
    names: set[str] = set()
    for index, parameter in enumerate(parameters):
        if not PARAMETER_NAME.fullmatch(parameter.name):
            raise error(f"{where}.parameters[{index}]: invalid parameter name {parameter.name!r}.")
        if parameter.name in names:
            raise error(f"{where}.parameters[{index}]: parameter {parameter.name!r} is declared twice.")
        names.add(parameter.name)
