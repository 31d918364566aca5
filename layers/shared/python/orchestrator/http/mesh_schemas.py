"""Request bodies of the mesh routes (SPEC §18, the agent's wire format: unknown fields are
ignored). Formats are checked by the mesh rules, so a malformed key or endpoint is answered
with its own code (422 ``public_key_invalid``, 400 ``invalid_endpoint``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from orchestrator.domain.mesh import MAX_ENDPOINT_CHARS, MAX_PUBLIC_KEY_CHARS
from orchestrator.http.schemas import NodeBody


class KeyRotateRequest(NodeBody):
    node_id: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="The rotating node: the bearer NSK must be its key (401 `nsk_revoked`, 403 `nsk_node_mismatch`)."
    )
    new_public_key: Annotated[str, Field(max_length=MAX_PUBLIC_KEY_CHARS)] = Field(
        description="Standard base64 of the node's new 32-byte Curve25519 public key (else 422 `public_key_invalid`)."
    )


class EndpointReport(NodeBody):
    public_endpoint: Annotated[str, Field(max_length=MAX_ENDPOINT_CHARS)] = Field(
        description="`host:port` as STUN discovered it: IPv4, `[IPv6]` or a DNS name, port 1..65535 (else 400"
        " `invalid_endpoint`).",
        examples=["203.0.113.10:51820"],
    )
    nat_type: Annotated[str, Field(max_length=32)] = Field(
        "", description="`none`, `full_cone`, `symmetric` or `unknown` (stored as reported).", examples=["full_cone"]
    )
