"""Local KMS keys that survive a restart.

moto gives every key a random id and random key material, and its ciphertexts name the key
id they were made under. A restarted ``make serve`` deploys a new key, so what the previous
run sealed (node keys, the data keys of secrets) would no longer decrypt. moto's API cannot
import key material or choose a key id, so a clean stop saves each template key's id and
material and the next start gives them back to the newly deployed key (moto runs in this
process, in tests and in the local server alike). The material is owner-readable only, with
the rest of the saved state.
"""

from __future__ import annotations

import base64
from typing import Any

import boto3

from orchestrator_local.resources import ACCOUNT, REGION, Stack


def _backend() -> Any:
    from moto.kms.models import kms_backends

    return kms_backends[ACCOUNT][REGION]


def export_keys(stack: Stack) -> dict[str, dict[str, str]]:
    """Each template key's id and material (base64), by logical id."""
    keys = _backend().keys
    return {
        name: {"key_id": stack.refs[name], "material": base64.b64encode(keys[stack.refs[name]].key_material).decode()}
        for name in stack.template.resources_of("AWS::KMS::Key")
        if name in stack.refs
    }


def adopt_keys(stack: Stack, saved: dict[str, dict[str, str]]) -> None:
    """Give the freshly deployed keys the ids and material saved by :func:`export_keys`, and
    point the template's aliases at them again."""
    backend = _backend()
    for name, old in saved.items():
        if name not in stack.refs:
            continue
        key = backend.keys.pop(stack.refs[name])
        key.id = old["key_id"]
        key.arn = key.arn.rsplit("/", 1)[0] + "/" + old["key_id"]
        key.key_material = base64.b64decode(old["material"])
        backend.keys[key.id] = key
        stack.refs[name] = key.id
        stack.attributes[(name, "Arn")] = key.arn
    kms = boto3.client("kms", region_name=REGION)
    for name, alias in stack.template.resources_of("AWS::KMS::Alias").items():
        target = stack.resolve(alias["Properties"]["TargetKeyId"])
        kms.update_alias(AliasName=stack.refs[name], TargetKeyId=str(target))
