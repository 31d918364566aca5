"""Request models (validated at the edge) and response projections.

Node-facing bodies ignore unknown fields (agents are newer or older than the control
plane); operator-facing bodies forbid them (typos should fail loudly). A model's docstring
and field descriptions are its documentation in ``api/openapi.yaml`` (``make openapi``); a
``title`` in its config is its name there.
Projections are metadata-only: no secret, token or hash ever leaves here except in the one
response that mints it; ``orchestrator.http.responses`` describes what they build.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StrictInt,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from orchestrator.clock import rfc3339
from orchestrator.domain.capabilities import PARAMETER_NAME
from orchestrator.domain.labels import LABEL_TOKEN, is_label_token
from orchestrator.domain.liveness import node_liveness
from orchestrator.domain.mesh import WIREGUARD_KEY_BYTES
from orchestrator.domain.models import (
    ActionParameter,
    BinaryInfo,
    BuiltinAction,
    Capabilities,
    Domain,
    Hook,
    Membership,
    Node,
    Project,
    Relation,
)
from orchestrator.errors import InvalidParameter
from orchestrator.http.request_body import encoded_size

# What one node item can hold of what a node declares (DynamoDB items stop at 400 KB).
MAX_CAPABILITIES_BYTES = 256 * 1024
MAX_METADATA_BYTES = 16 * 1024
HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
SUBJECT = re.compile(r"^[A-Za-z0-9@._:+|-]{1,256}$")
CHECKSUM_EXAMPLE = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
GO_NIL = "`null` (Go's nil slice) is an empty list."


class NodeBody(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": True})


def _nil_slice(value: Any) -> Any:
    """Go's encoding/json writes a nil slice as ``null``: the agent's empty list."""
    return [] if value is None else value


class _NullIsEmpty:
    """The JSON Schema of a ``GoList``: the list, or ``null``."""

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"anyOf": [handler(core_schema), {"type": "null"}]}


T = TypeVar("T")
GoList = Annotated[list[T], BeforeValidator(_nil_slice), _NullIsEmpty()]


class OperatorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Capabilities (node wire format) ------------------------------------------------
class ParameterIn(NodeBody):
    """A parameter of a builtin action or hook, as the node declares it."""

    model_config = ConfigDict(title="ParameterDeclaration")

    # Checked by the capability rules (422), documented here.
    name: str = Field(json_schema_extra={"pattern": PARAMETER_NAME.pattern})
    type: str = Field(
        "string",
        description="`string`, `integer`, `number`, `boolean`, `object` or `array`; any other value is stored as"
        " `string`.",
    )
    required: bool = False
    description: str = ""
    default: Any = Field(None, description="Default value (any JSON).")

    def to_domain(self) -> ActionParameter:
        kind = self.type if self.type in {"string", "integer", "number", "boolean", "object", "array"} else "string"
        return ActionParameter(
            name=self.name,
            type=kind,
            required=self.required,
            description=self.description,
            default=self.default,
        )


class BuiltinActionIn(NodeBody):
    model_config = ConfigDict(title="BuiltinActionDeclaration")

    # missing is "empty": 422 builtin_action_invalid, as the spec says for empty names
    name: str = Field(
        "",
        description="Must match `^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$` and be unique among the node's builtin"
        " actions (else 422 `builtin_action_invalid`, `builtin_action_duplicate`).",
    )
    description: str = ""
    parameters: GoList[ParameterIn] = Field(default_factory=list, description=GO_NIL)
    dangerous: bool = Field(False, description="A dangerous action requires `confirmation` on dispatch.")
    requires_confirmation: bool = Field(False, description="Same effect as `dangerous`.")


class HookIn(NodeBody):
    model_config = ConfigDict(title="HookDeclaration")

    # missing name or checksum: 422 hook_invalid from the domain rules
    name: str = Field(
        "",
        description="Must match `^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$` and be unique among the node's hooks"
        " (else 422 `hook_invalid`, `hook_duplicate`).",
    )
    description: str = ""
    source: str = "script"
    checksum: str = Field(
        "",
        description="`sha256:` followed by 64 lowercase hex digits (else 422 `hook_invalid`).",
        examples=[CHECKSUM_EXAMPLE],
    )
    parameters: GoList[ParameterIn] = Field(default_factory=list, description=GO_NIL)
    timeout: str | None = Field(None, description="Go duration, e.g. `300s`.")
    sandbox: str | None = None
    dangerous: bool = Field(False, description="A dangerous hook requires `confirmation` on dispatch.")
    requires_confirmation: bool = Field(False, description="Same effect as `dangerous`.")


class BinaryIn(NodeBody):
    """The agent binary; null or absent when not reported."""

    model_config = ConfigDict(title="BinaryDeclaration")

    version: str = ""
    checksum: str = ""


class CapabilitiesIn(NodeBody):
    """What a node can run (node wire format; unknown fields are ignored)."""

    model_config = ConfigDict(title="CapabilitiesDeclaration")

    binary: BinaryIn | None = None
    builtin_actions: GoList[BuiltinActionIn] = Field(default_factory=list, max_length=1000, description=GO_NIL)
    hooks: GoList[HookIn] = Field(default_factory=list, max_length=1000, description=GO_NIL)

    @model_validator(mode="after")
    def _fits_a_node_item(self) -> CapabilitiesIn:
        size = len(self.model_dump_json().encode())
        if size > MAX_CAPABILITIES_BYTES:
            raise ValueError(f"capabilities encode to {size} bytes of JSON; at most {MAX_CAPABILITIES_BYTES}")
        return self

    def to_domain(self) -> Capabilities:
        return Capabilities(
            binary=BinaryInfo(version=self.binary.version, checksum=self.binary.checksum) if self.binary else None,
            builtin_actions=tuple(
                BuiltinAction(
                    name=a.name,
                    description=a.description,
                    parameters=tuple(p.to_domain() for p in a.parameters),
                    dangerous=a.dangerous or a.requires_confirmation,
                )
                for a in self.builtin_actions
            ),
            hooks=tuple(
                Hook(
                    name=h.name,
                    description=h.description,
                    source=h.source,
                    checksum=h.checksum,
                    parameters=tuple(p.to_domain() for p in h.parameters),
                    timeout=h.timeout,
                    sandbox=h.sandbox,
                    dangerous=h.dangerous or h.requires_confirmation,
                )
                for h in self.hooks
            ),
        )


class RegisterRequest(NodeBody):
    token: Annotated[str, Field(min_length=1, max_length=512)] = Field(description="The one-time enrollment token.")
    hostname: Annotated[str, Field(min_length=1, max_length=253)] = Field(
        description="Unique among the project's registered nodes.", json_schema_extra={"pattern": HOSTNAME.pattern}
    )
    public_key: Annotated[str, Field(max_length=64)] = Field(
        "",
        description="The node's WireGuard (Curve25519) public key: standard base64 of 32 bytes. A node"
        " registered without one holds a mesh address but is nobody's peer until it rotates a key in.",
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Free-form node metadata, at most 64 entries and 16 KiB as JSON. Entries whose key and scalar"
        " value (strings, numbers, booleans as `true`/`false`) match `[A-Za-z0-9._/-]{1,63}` become the node's"
        " labels.",
        json_schema_extra={"maxProperties": 64},
    )
    capabilities: CapabilitiesIn = Field(default_factory=CapabilitiesIn)

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        if not HOSTNAME.fullmatch(value):
            raise ValueError("hostname must be letters, digits, '-' and '.'")
        return value

    @field_validator("public_key")
    @classmethod
    def _public_key(cls, value: str) -> str:
        if not value:
            return value
        try:
            raw = base64.b64decode(value.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            raise ValueError("public_key must be standard base64") from None
        if len(raw) != WIREGUARD_KEY_BYTES:
            raise ValueError(f"public_key must encode {WIREGUARD_KEY_BYTES} bytes, not {len(raw)}")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 64:
            raise ValueError("at most 64 metadata entries")
        size = encoded_size(value)
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"metadata encodes to {size} bytes of JSON; at most {MAX_METADATA_BYTES}")
        return value


HeartbeatText = Annotated[str, Field(max_length=1024)]


class HeartbeatRequest(NodeBody):
    """Optional liveness report (unknown fields are ignored)."""

    node_id: HeartbeatText | None = None
    timestamp: HeartbeatText | None = None
    status: HeartbeatText | None = None
    uptime: HeartbeatText | None = None
    binary_checksum: HeartbeatText | None = None


# Operator bodies --------------------------------------------------------------------
class CreateDomainRequest(OperatorBody):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    live_execution_ceiling: Annotated[StrictInt, Field(ge=1, le=1_000_000)] | None = Field(
        None, description="Ceiling of live Executions; absent or null uses the deployment default (100)."
    )


class UpdateDomainRequest(OperatorBody):
    live_execution_ceiling: Annotated[StrictInt, Field(ge=1, le=1_000_000)]


class CreateProjectRequest(OperatorBody):
    name: Annotated[str, Field(min_length=1, max_length=128)]


class GrantRequest(OperatorBody):
    relation: Relation


class CreateEnrollmentTokenRequest(OperatorBody):
    ttl_seconds: Annotated[StrictInt, Field(ge=60, le=30 * 86_400)] | None = Field(
        None, description="Lifetime of the token; absent or null uses the deployment default (86400)."
    )


class UpdateNodeLabelsRequest(OperatorBody):
    labels: Annotated[dict[str, str | None], Field(min_length=1, max_length=64)] = Field(
        description="Label changes: a string value sets the label, `null` removes it. Keys and values match"
        " `[A-Za-z0-9._/-]{1,63}`.",
        json_schema_extra={
            "additionalProperties": {"anyOf": [{"type": "string", "pattern": LABEL_TOKEN.pattern}, {"type": "null"}]}
        },
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        for key, label in value.items():
            if not is_label_token(key) or (label is not None and not is_label_token(label)):
                raise ValueError("label keys and values must match [A-Za-z0-9._/-]{1,63}")
        return value


def checked_subject(value: str) -> str:
    """A role grant's subject from the path (URL-decoded by API Gateway)."""
    if not SUBJECT.fullmatch(value):
        raise InvalidParameter("The member subject has unsupported characters.")
    return value


# Projections -------------------------------------------------------------------------
def _ts(value: datetime | None) -> str | None:
    return rfc3339(value) if value else None


def domain_view(domain: Domain) -> dict[str, Any]:
    return {
        "id": domain.id,
        "name": domain.name,
        "live_execution_ceiling": domain.live_execution_ceiling,
        "created_at": rfc3339(domain.created_at),
    }


def project_view(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "domain_id": project.domain_id,
        "name": project.name,
        "created_at": rfc3339(project.created_at),
    }


def membership_view(membership: Membership) -> dict[str, Any]:
    return {
        "object_type": membership.object_type,
        "object_id": membership.object_id,
        "subject": membership.subject,
        "relation": membership.relation.value,
    }


def capabilities_summary(capabilities: Capabilities) -> dict[str, Any]:
    return {
        "binary": capabilities.binary.model_dump() if capabilities.binary else None,
        "builtin_actions": [a.name for a in capabilities.builtin_actions],
        "hooks": [{"name": h.name, "checksum": h.checksum} for h in capabilities.hooks],
    }


def node_view(node: Node, now: datetime) -> dict[str, Any]:
    return {
        "id": node.id,
        "project_id": node.project_id,
        "hostname": node.hostname,
        "labels": node.labels,
        "capabilities": capabilities_summary(node.capabilities),
        "mesh_ip": node.mesh_ip,
        "registered_at": rfc3339(node.registered_at),
        "last_heartbeat_at": _ts(node.last_heartbeat_at),
        "status": node_liveness(node, now),
    }
