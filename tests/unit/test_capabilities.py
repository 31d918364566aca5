"""Capability validation rules (SPEC §5)."""

from __future__ import annotations

import pytest

from orchestrator.domain.capabilities import validate_capabilities
from orchestrator.domain.models import ActionParameter, BuiltinAction, Capabilities, Hook
from orchestrator.errors import BuiltinActionDuplicate, BuiltinActionInvalid, HookDuplicate, HookInvalid

CHECKSUM = "sha256:" + "0" * 64


def test_valid_capabilities_pass_unchanged() -> None:
    caps = Capabilities(
        builtin_actions=(BuiltinAction(name="restart-agent", parameters=(ActionParameter(name="force"),)),),
        hooks=(Hook(name="rotate.keys", checksum=CHECKSUM),),
    )
    assert validate_capabilities(caps) is caps


@pytest.mark.parametrize("name", ["", " ", "-leading-dash", "has space", "x" * 129, "ünïcode"])
def test_invalid_builtin_name_is_builtin_action_invalid(name: str) -> None:
    with pytest.raises(BuiltinActionInvalid):
        validate_capabilities(Capabilities(builtin_actions=(BuiltinAction(name=name),)))


def test_duplicate_builtin_is_builtin_action_duplicate_naming_the_index() -> None:
    caps = Capabilities(builtin_actions=(BuiltinAction(name="a"), BuiltinAction(name="b"), BuiltinAction(name="a")))
    with pytest.raises(BuiltinActionDuplicate, match=r"builtin_actions\[2\]"):
        validate_capabilities(caps)


def test_duplicate_parameter_is_invalid() -> None:
    action = BuiltinAction(name="a", parameters=(ActionParameter(name="p"), ActionParameter(name="p")))
    with pytest.raises(BuiltinActionInvalid):
        validate_capabilities(Capabilities(builtin_actions=(action,)))


@pytest.mark.parametrize("checksum", ["", "sha256:abc", "md5:" + "0" * 64, "sha256:" + "G" * 64, "sha256:" + "A" * 64])
def test_hook_checksum_must_be_lowercase_sha256(checksum: str) -> None:
    with pytest.raises(HookInvalid):
        validate_capabilities(Capabilities(hooks=(Hook(name="h", checksum=checksum),)))


def test_duplicate_hook_is_hook_duplicate() -> None:
    hooks = (Hook(name="h", checksum=CHECKSUM), Hook(name="h", checksum=CHECKSUM))
    with pytest.raises(HookDuplicate):
        validate_capabilities(Capabilities(hooks=hooks))


def test_same_name_as_builtin_and_hook_is_allowed() -> None:
    caps = Capabilities(builtin_actions=(BuiltinAction(name="x"),), hooks=(Hook(name="x", checksum=CHECKSUM),))
    assert validate_capabilities(caps) is caps
