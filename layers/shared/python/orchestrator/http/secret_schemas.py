"""Secrets at the edge (SPEC §18): the operator's write body, the path's key, the projections."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from orchestrator.clock import rfc3339
from orchestrator.domain.secrets import MAX_VALUE_BYTES, SECRET_KEY, SecretGrants, SecretMeta
from orchestrator.domain.selectors import parse_selector
from orchestrator.errors import InvalidParameter
from orchestrator.http.schemas import OperatorBody

NODE_ID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
MAX_GRANTED_NODES = 1000
MAX_SELECTOR_CHARS = 1024


class SecretGrantsIn(OperatorBody):
    node_ids: Annotated[list[Annotated[str, Field(pattern=NODE_ID)]], Field(max_length=MAX_GRANTED_NODES)] = Field(
        default_factory=list, description="Nodes granted the secret, by id."
    )
    selector: Annotated[str, Field(min_length=1, max_length=MAX_SELECTOR_CHARS)] | None = Field(
        None, description="Nodes whose labels match this selector (SPEC §7) are granted the secret too."
    )


class PutSecretRequest(OperatorBody):
    """The value (never readable back) and who may fetch it (unknown fields are refused)."""

    value: Annotated[str, Field(min_length=1, max_length=MAX_VALUE_BYTES)] = Field(
        description=f"The secret's value, at most {MAX_VALUE_BYTES} bytes of UTF-8."
    )
    grants: SecretGrantsIn = Field(default_factory=SecretGrantsIn)

    def value_bytes(self) -> bytes:
        encoded = self.value.encode()
        if len(encoded) > MAX_VALUE_BYTES:
            raise InvalidParameter(f"The value is over {MAX_VALUE_BYTES} bytes of UTF-8.")
        return encoded

    def to_grants(self) -> SecretGrants:
        """The grants, the selector parsed (400 ``malformed_selector`` with its position)."""
        if self.grants.selector is not None:
            parse_selector(self.grants.selector)
        # Node ids are minted lower case; an id spelled in capitals names the same node.
        node_ids = tuple(dict.fromkeys(node_id.lower() for node_id in self.grants.node_ids))
        return SecretGrants(node_ids=node_ids, selector=self.grants.selector)


def checked_secret_key(key: str) -> str:
    """A secret's name from the path (400 ``invalid_parameter``)."""
    if not SECRET_KEY.fullmatch(key):
        raise InvalidParameter("The secret name must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}.")
    return key


def grants_view(grants: SecretGrants) -> dict[str, Any]:
    return {"node_ids": list(grants.node_ids), "selector": grants.selector}


def secret_written_view(meta: SecretMeta) -> dict[str, Any]:
    return {"key": meta.key, "version": meta.version, "grants": grants_view(meta.grants)}


def secret_view(meta: SecretMeta) -> dict[str, Any]:
    return {
        "key": meta.key,
        "version": meta.version,
        "grants": grants_view(meta.grants),
        "updated_at": rfc3339(meta.updated_at),
    }
