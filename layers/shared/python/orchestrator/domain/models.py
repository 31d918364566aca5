"""Domain models (distinct from request/response models and table items)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Relation(StrEnum):
    """ReBAC relations, weakest first. Each includes the ones before it."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RELATION_ORDER.index(self)

    def includes(self, other: Relation) -> bool:
        return self.rank >= other.rank


_RELATION_ORDER = [Relation.VIEWER, Relation.OPERATOR, Relation.ADMIN]


class Permission(StrEnum):
    READ = "read"
    DISPATCH = "dispatch"
    CANCEL = "cancel"
    OPERATE = "operate"  # operator-level writes that are not dispatches (a node's data entries)
    ADMIN = "admin"


class Domain(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    live_execution_ceiling: int
    created_at: datetime


class Project(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    domain_id: str
    name: str
    created_at: datetime


class Membership(BaseModel):
    model_config = ConfigDict(frozen=True)

    object_type: Literal["domain", "project"]
    object_id: str
    subject: str
    relation: Relation


ParameterType = Literal["string", "integer", "number", "boolean", "object", "array"]


class ActionParameter(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: ParameterType = "string"
    required: bool = False
    description: str = ""
    default: Any = None


class BuiltinAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    parameters: tuple[ActionParameter, ...] = ()
    dangerous: bool = False


class Hook(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    source: str = "script"
    checksum: str
    parameters: tuple[ActionParameter, ...] = ()
    timeout: str | None = None
    sandbox: str | None = None
    dangerous: bool = False


class BinaryInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str = ""
    checksum: str = ""


class Capabilities(BaseModel):
    model_config = ConfigDict(frozen=True)

    binary: BinaryInfo | None = None
    builtin_actions: tuple[BuiltinAction, ...] = ()
    hooks: tuple[Hook, ...] = ()


class NodeStatus(StrEnum):
    ACTIVE = "active"
    DEREGISTERED = "deregistered"


class Node(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    project_id: str
    domain_id: str
    hostname: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    capabilities: Capabilities = Capabilities()
    status: NodeStatus = NodeStatus.ACTIVE
    mesh_ip: str
    public_key: str = ""
    key_version: int = 0
    endpoint: str = ""
    nat_type: str = ""
    registered_at: datetime
    updated_at: datetime
    last_heartbeat_at: datetime | None = None
    deregistered_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.status is NodeStatus.ACTIVE


class CohortNode(BaseModel):
    """What cohort resolution reads of a node (labels to match, declarations to filter,
    identity for targets), without the rest of its record."""

    model_config = ConfigDict(frozen=True)

    id: str
    hostname: str
    labels: dict[str, str] = Field(default_factory=dict)
    capabilities: Capabilities = Capabilities()
    status: NodeStatus = NodeStatus.ACTIVE

    @classmethod
    def of(cls, node: Node) -> CohortNode:
        return cls(
            id=node.id, hostname=node.hostname, labels=node.labels, capabilities=node.capabilities, status=node.status
        )

    @property
    def is_active(self) -> bool:
        return self.status is NodeStatus.ACTIVE


class EnrollmentToken(BaseModel):
    model_config = ConfigDict(frozen=True)

    token_hash: str
    project_id: str
    domain_id: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    used: bool = False  # consumed by a registration (one-time)
