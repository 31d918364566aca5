"""Response bodies as the API sends them: the models ``api/openapi.yaml`` documents.

The projections (``schemas.node_view``, ``execution_schemas.execution_view``...) and a few
use cases build these bodies as dicts, field by field, in the order clients see them.
These models describe the same bodies: the OpenAPI document's response schemas are
generated from them (``make openapi``), and the tests validate real answers against them
(unknown fields, missing ones and field order included), so the two cannot drift apart.

Conventions: a field typed ``Omittable[...]`` is left out of the JSON when it has no value
(never sent as ``null``); a field typed ``... | None`` without it is always sent and may
be ``null``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from typing_extensions import TypeAliasType

from orchestrator.domain.models import Relation
from orchestrator.http.execution_schemas import RateIn

EXAMPLE_ID = "0190b5e4-6f1a-7cc2-8d3e-2b9f3a1c4d5e"
EXAMPLE_CHECKSUM = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
SHA256_HEX = r"^[0-9a-f]{64}$"


class _LeftOutWhenNone:
    """Schema of an ``Omittable`` field: its value's, without ``null`` (the field is absent
    instead)."""

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        branches = [branch for branch in schema.get("anyOf", []) if branch != {"type": "null"}]
        if len(branches) != 1:
            return schema
        rest = {key: value for key, value in schema.items() if key != "anyOf"}
        return {**branches[0], **rest}


T = TypeVar("T")
Omittable = Annotated[T | None, _LeftOutWhenNone()]

Id = TypeAliasType(
    "Id",
    Annotated[
        str,
        Field(description="A UUIDv7 (creation-ordered).", json_schema_extra={"format": "uuid"}, examples=[EXAMPLE_ID]),
    ],
)
Timestamp = TypeAliasType(
    "Timestamp",
    Annotated[
        str,
        Field(
            description="RFC 3339 UTC with a `Z` suffix.",
            json_schema_extra={"format": "date-time"},
            examples=["2025-01-01T12:00:00.000Z"],
        ),
    ],
)
_STATES = Literal["pending", "ack", "started", "succeeded", "failed", "cancelled", "timeout"]
TargetStatus = TypeAliasType(
    "TargetStatus",
    Annotated[
        _STATES,
        Field(
            description="Invocation state (SPEC §8); terminal states are `succeeded`, `failed`, `cancelled`, `timeout`."
        ),
    ],
)
ExecutionStatus = TypeAliasType(
    "ExecutionStatus",
    Annotated[
        _STATES,
        Field(
            description="Aggregate (SPEC §8): `pending` until any target moves, then the least advanced "
            "non-terminal target state; once all targets are terminal: `succeeded` if all "
            "succeeded, `cancelled` if an operator cancelled, `failed` if any failed, else "
            "`timeout`."
        ),
    ],
)
ActionType = TypeAliasType("ActionType", Literal["builtin", "hook"])
ActionName = TypeAliasType(
    "ActionName", Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
)
JsonObject = dict[str, Any]
AlwaysEmpty = Annotated[list[Any], Field(max_length=0, description="Always empty in this build.")]


class ResponseBody(BaseModel):
    """A body the API sends: exactly these fields (tests refuse any other)."""

    model_config = ConfigDict(extra="forbid")


# Problems (RFC 9457) ------------------------------------------------------------------
class FieldError(ResponseBody):
    field: str = Field(
        description="Dotted location of the field, or `(body)`.", examples=["capabilities.builtin_actions.0.name"]
    )
    message: str


class DriftingNode(ResponseBody):
    node_id: Id
    hostname: str
    checksum: str


class Problem(BaseModel):
    """RFC 9457 problem details (`application/problem+json`). `type` is
    `urn:plexsphere:problem:<code>`; `code` is the stable machine-readable error.
    Extensions appear on specific codes: `dimension` and `limit`
    (`capacity_exceeded`), `reason` and `relation_path` (`rebac_denied`), `errors`
    (`invalid_body`), `position` (`malformed_selector`), `problems`
    (`invalid_parameters`), `hook`, `baseline` and `drifting_nodes`
    (`hook_integrity_violation`), `keys` (`report_version_conflict`,
    `report_payload_too_large`, and `invalid_body` for a key repeated in a report batch)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:plexsphere:problem:rebac_denied"])
    title: str = Field(description="Short, fixed per code.")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="Human-readable explanation; never leaks internals.")
    instance: str = Field(description="The request path.")
    code: str = Field(examples=["rebac_denied"])
    correlation_id: str = Field(description="Same value as the `X-Correlation-Id` response header.")
    dimension: Omittable[str] = Field(
        None, description="The exhausted capacity dimension (`capacity_exceeded`).", examples=["action_executions"]
    )
    reason: Omittable[Literal["out_of_scope", "insufficient_relation", "caveat_violation"]] = Field(
        None,
        description="Why access was denied (`rebac_denied`), as the operator SDK's `PermissionDenied` "
        "types it; today always `insufficient_relation` (the caller's relations on the "
        "project and its Domain do not include the one required). `detail` says which.",
    )
    relation_path: Omittable[list[str]] = Field(
        None,
        description="The relation path checked (`rebac_denied`).",
        examples=[["user:alice", f"project:{EXAMPLE_ID}#admin"]],
    )
    errors: Omittable[list[FieldError]] = Field(None, description="Per-field validation errors (`invalid_body`).")
    limit: Omittable[int] = Field(None, description="The exhausted ceiling (`capacity_exceeded`).", examples=[100])
    position: Omittable[int] = Field(
        None,
        ge=0,
        description="0-based offset of the offending character in the selector; its length for an unexpected"
        " end (`malformed_selector`).",
    )
    problems: Omittable[list[str]] = Field(
        None, description="Each missing, unknown or mistyped parameter (`invalid_parameters`)."
    )
    hook: Omittable[str] = Field(None, description="The hook (`hook_integrity_violation`).")
    baseline: str | None = Field(
        None,
        description="The pinned baseline checksum, null when none is pinned (`hook_integrity_violation`).",
    )
    drifting_nodes: Omittable[list[DriftingNode]] = Field(
        None,
        description="The targets whose declared checksum differs from the baseline; empty when none is pinned"
        " (`hook_integrity_violation`).",
    )
    keys: Omittable[list[str]] = Field(
        None,
        description="The report keys refused: a version not greater than the stored one"
        " (`report_version_conflict`), a payload too large (`report_payload_too_large`), a key repeated in the"
        " batch (`invalid_body`).",
        examples=[["app-health"]],
    )


# Tenancy ------------------------------------------------------------------------------
class DomainView(ResponseBody):
    model_config = ConfigDict(title="Domain")

    id: Id
    name: str
    live_execution_ceiling: int
    created_at: Timestamp


class ProjectView(ResponseBody):
    model_config = ConfigDict(title="Project")

    id: Id
    domain_id: Id
    name: str
    created_at: Timestamp


class MembershipView(ResponseBody):
    model_config = ConfigDict(title="Membership")

    object_type: Literal["domain", "project"]
    object_id: Id
    subject: str
    relation: Relation


# Nodes --------------------------------------------------------------------------------
class EnrollmentToken(ResponseBody):
    token: str = Field(
        description="The one-time bootstrap token (returned only here).", examples=["plx_enroll_4q0b3..."]
    )
    expires_at: Timestamp


class BinarySummary(ResponseBody):
    version: str
    checksum: str


class HookSummary(ResponseBody):
    name: str
    checksum: str


class CapabilitiesSummary(ResponseBody):
    """Metadata-only view of a node's capabilities."""

    binary: BinarySummary | None
    builtin_actions: list[str] = Field(description="Names of the declared builtin actions.")
    hooks: list[HookSummary]


class NodeView(ResponseBody):
    """Metadata-only node projection (no credentials)."""

    model_config = ConfigDict(title="Node")

    id: Id
    project_id: Id
    hostname: str
    labels: dict[str, str]
    capabilities: CapabilitiesSummary
    mesh_ip: str
    registered_at: Timestamp
    last_heartbeat_at: Timestamp | None
    status: Literal["online", "stale", "deregistered"] = Field(
        description="`online` if heard from (heartbeat or registration) within 90 s, else `stale`;"
        " `deregistered` once deregistered."
    )


class NodeList(ResponseBody):
    items: list[NodeView]
    next_cursor: Omittable[str] = Field(None, description="Absent on the last page.")


class Peer(ResponseBody):
    """Another active node of the project, as the agent configures it as a WireGuard peer."""

    id: Id
    public_key: str = Field(description="Base64 of the peer's Curve25519 public key.")
    mesh_ip: str = Field(examples=["10.100.0.2"])
    endpoint: str = Field(
        description='The peer\'s public `host:port`, or `""` until it reported one.', examples=["203.0.113.10:51820"]
    )
    allowed_ips: list[str] = Field(description='`["<mesh_ip>/32"]`.', min_length=1, max_length=1)
    psk: str = Field(
        description="Base64 of the 32-byte pre-shared key of this node and the peer: the same on both sides,"
        " new after either rotates its key."
    )


class PeerEndpoint(ResponseBody):
    peer_id: Id
    endpoint: str = Field(examples=["198.51.100.5:51820"])


class KeyRotated(ResponseBody):
    updated_peers: list[Peer] = Field(description="Every other active node of the project, with the new pair keys.")


class EndpointReported(ResponseBody):
    peer_endpoints: list[PeerEndpoint] = Field(
        description="The known endpoints of the other active nodes of the project (those without one are left out)."
    )


class KeyRotationRequested(ResponseBody):
    node_id: Id
    rotate_keys: Literal[True] = Field(description="The node's next heartbeat answers `rotate_keys: true`.")


class Registration(ResponseBody):
    node_id: Id
    mesh_ip: str = Field(description="Sequential address in 10.100.0.0/16.", examples=["10.100.0.1"])
    signing_public_key: str = Field(description="Base64 of the raw 32-byte Ed25519 public key that signs node events.")
    node_secret_key: str = Field(description="The node secret key (base64 of 32 random bytes); returned only here.")
    peers: list[Peer] = Field(description="The other active nodes of the project.")


class CapabilitiesUpdated(ResponseBody):
    node_id: Id
    capabilities: CapabilitiesSummary
    updated_at: Timestamp


class HeartbeatResponse(ResponseBody):
    reconcile: bool = Field(description="The node should fetch `GET /v1/nodes/{node_id}/state` and reconcile.")
    rotate_keys: bool = Field(description="The node should rotate its keys.")


class DeregisterResponse(ResponseBody):
    node_id: Id
    status: Literal["deregistered"]


class Ping(ResponseBody):
    status: Literal["ok"]


class OpenInvocation(ResponseBody):
    execution_id: Id
    action: str
    type: ActionType
    parameters: JsonObject
    status: Literal["pending", "ack", "started"]
    requested_at: Timestamp = Field(description="When the invocation was created (the dispatch).")
    expires_at: Timestamp = Field(description="The invocation's deadline; it becomes `timeout` then.")


class SigningKeys(ResponseBody):
    current: str = Field(description="Base64 of the raw 32-byte Ed25519 public key that signs node events.")
    previous: str | None = Field(
        description="The key before the last rotation, while its transition lasts (it signs the events up to"
        " and including `signing_key_rotated`); null otherwise."
    )
    transition_expires: Timestamp | None = Field(
        description="When `previous` stops being valid; null when there is no previous key."
    )


class SigningKeyView(SigningKeys):
    """The deployment's event-signing keys."""

    valid_from: Timestamp | None = Field(description="When `current` started signing; null if never rotated.")


class AgentPolicyRule(ResponseBody):
    """A rule as plexd reads it: `protocol` `""` is any protocol, `port` 0 any port."""

    src: str = Field(description="A node id or `*`.")
    dst: str = Field(description="A node id or `*`.")
    port: int = Field(ge=0, le=65535)
    protocol: Literal["tcp", "udp", ""]
    action: Literal["allow", "deny"]


class AgentPolicy(ResponseBody):
    id: str
    rules: list[AgentPolicyRule]


class DataEntryView(ResponseBody):
    """One operator data entry of a node, as plexd's `DataEntry` reads it."""

    model_config = ConfigDict(title="NodeDataEntry")

    key: str = Field(examples=["config"])
    content_type: str = Field(examples=["application/json"])
    payload: Any = Field(description="The JSON value written.")
    version: int = Field(ge=1, description="1 when created, + 1 per write.")
    updated_at: Timestamp


class NodeDataList(ResponseBody):
    items: list[DataEntryView] = Field(
        description="Every entry of the node, in key order (a node's entries are bounded)."
    )


class PolicyRuleView(ResponseBody):
    src: str
    dst: str
    port: int = Field(ge=0, le=65535)
    protocol: Literal["tcp", "udp", "any"]
    action: Literal["allow", "deny"]


class PolicyView(ResponseBody):
    model_config = ConfigDict(title="Policy")

    id: str
    project_id: Id
    selector: str
    rules: list[PolicyRuleView]
    version: int = Field(ge=1, description="1 when created, + 1 per write.")
    updated_at: Timestamp
    updated_by: str = Field(description="`user:<subject>` of the admin who wrote it.", examples=["user:alice"])


class PolicyList(ResponseBody):
    items: list[PolicyView]
    next_cursor: Omittable[str] = Field(None, description="Absent on the last page.")


class SecretRef(ResponseBody):
    key: str
    version: int


class SecretGrantsView(ResponseBody):
    node_ids: list[Id] = Field(description="Nodes granted the secret by id.")
    selector: str | None = Field(description="Nodes whose labels match this selector are granted it too.")


class SecretWritten(ResponseBody):
    """The version written (never the value)."""

    key: str
    version: int = Field(description="1 on creation, +1 per write.")
    grants: SecretGrantsView


class SecretView(ResponseBody):
    key: str
    version: int
    grants: SecretGrantsView
    updated_at: Timestamp


class SecretList(ResponseBody):
    items: list[SecretView]
    next_cursor: Omittable[str] = Field(None, description="Absent on the last page.")


class NodeSecret(ResponseBody):
    """The value encrypted for the node: AES-256-GCM under its NSK, no AAD (SPEC §18)."""

    key: str
    ciphertext: str = Field(description="Standard base64 of the AES-256-GCM ciphertext with its 16-byte tag appended.")
    nonce: str = Field(description="Standard base64 of the random 12-byte nonce.")
    version: int


class NodeState(ResponseBody):
    node_id: Id
    executions: list[OpenInvocation] = Field(
        description="The node's open invocations that were released to it, by Execution id."
    )
    signing_keys: SigningKeys
    peers: list[Peer] = Field(description="The other active nodes of the project.")
    policies: list[AgentPolicy] = Field(description="The project's policies whose selector matches the node's labels.")
    metadata: JsonObject = Field(description="The node's registration metadata.")
    data: list[DataEntryView] = Field(description="The node's operator data entries, in key order.")
    secret_refs: list[SecretRef] = Field(description="The secrets granted to the node, by name.")
    generated_at: Timestamp


# Executions ---------------------------------------------------------------------------
class TriggeredBy(BaseModel):
    """Who dispatched; for operator dispatches `{type: operator, subject: <JWT sub>}`."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["operator"])
    subject: str


class ExecutionCounts(ResponseBody):
    """Exact number of targets in each state (they add up to `target_count`)."""

    pending: int = Field(ge=0)
    ack: int = Field(ge=0)
    started: int = Field(ge=0)
    succeeded: int = Field(ge=0)
    failed: int = Field(ge=0)
    cancelled: int = Field(ge=0)
    timeout: int = Field(ge=0)


class InlineOutputRef(ResponseBody):
    kind: Literal["inline"]
    size: int = Field(ge=0, description="Size in bytes of the inline output.")
    inline_bytes: Omittable[str] = Field(
        None,
        json_schema_extra={"format": "byte"},
        description="Base64 (standard alphabet, padded) of the output bytes: at most 16 KiB for the "
        'unified callback; a `/result` document (`{"stdout", "stderr"}` JSON, stdout and '
        "stderr together at most 16 KiB) can be slightly larger. Absent only when "
        "`inline_bytes_omitted` is true.",
    )
    inline_bytes_omitted: Omittable[Literal[True]] = Field(
        None,
        description="Present (true) when this response had no room left for the bytes: one response "
        "carries at most 1 MiB of inline output in all (targets in node-id order, first "
        "come first served). `GET .../targets/{node_id}/output` serves them.",
    )


class ObjectStoreOutputRef(ResponseBody):
    kind: Literal["object_store"]
    bucket: str
    key: str = Field(
        description="`outputs/{execution_id}/{node_id}` (uploaded by the node) or"
        " `outputs/{execution_id}/{node_id}.json` (a `/result` stored by the control plane)."
    )
    sha256: str = Field(pattern=SHA256_HEX, description="SHA-256 of the object, lowercase hex.")
    size: int = Field(ge=0, description="Size of the object in bytes.")


OutputRef = TypeAliasType(
    "OutputRef",
    Annotated[
        InlineOutputRef | ObjectStoreOutputRef,
        Field(
            discriminator="kind",
            description="Where a target's output is (SPEC §3, §17; the operator SDK's `OutputRef`): "
            "`{kind: inline, inline_bytes, size}` (`inline_bytes` is the base64 of the output "
            "bytes stored with the invocation) or `{kind: object_store, bucket, key, sha256, "
            "size}` (read it with `GET .../targets/{node_id}/output`).",
        ),
    ],
)


class TargetView(ResponseBody):
    """One invocation of the Execution on one node."""

    model_config = ConfigDict(title="Target")

    node_id: Id
    hostname: str = Field(description="The node's hostname at dispatch time.")
    status: TargetStatus
    created_at: Timestamp
    updated_at: Timestamp
    exit_code: Omittable[int] = Field(None, description="As reported by the node (absent until reported).")
    error: Omittable[str] = Field(
        None,
        description="Why the target failed or ended without a report, e.g. the reported `error`, "
        "a rejected ack's reason, the tail of a failed `/result`'s stderr, "
        "`cancelled by operator`, `max_errors_reached` or `dispatch_failed`.",
    )
    output_ref: Omittable[OutputRef] = None
    late_reports: Omittable[int] = Field(
        None,
        ge=1,
        description="Reports refused after the target ended (409); absent when none. The first 10 "
        "are also in the audit trail (`detail.reason: late_report`, with this count).",
    )


class _ExecutionFields(ResponseBody):
    id: Id
    project_id: Id
    domain_id: Id
    action: ActionName
    type: ActionType
    parameters: JsonObject
    timeout_seconds: int = Field(ge=1, le=86_400)
    status: ExecutionStatus
    created_at: Timestamp
    updated_at: Timestamp
    started_at: Timestamp | None = Field(
        description="When the workflow sent the first `action_request` events (null before)."
    )
    completed_at: Timestamp | None = Field(description="When the Execution became final (null before).")
    expires_at: Timestamp = Field(description="`created_at + timeout_seconds`: open targets become `timeout` then.")
    triggered_by: TriggeredBy
    target_count: int = Field(ge=1, description="Number of targets (the cohort's size).")
    selector: Omittable[str] = Field(
        None,
        description="The dispatch's selector in canonical form (`=` for `==`, set values sorted); absent for a"
        " `node_id` dispatch.",
        examples=["env=prod,role in (api,web),!draining"],
    )
    node_id: Omittable[Id] = Field(None, description="The dispatch's `node_id`; absent for a selector dispatch.")
    rate: Omittable[RateIn] = None


class ExecutionSummary(_ExecutionFields):
    """An Execution as a list page holds it: without its counts, with its first 100
    targets by node id (`targets_truncated` says whether there are more; `GET
    .../executions/{execution_id}` has them all)."""

    targets: list[TargetView] = Field(description="The first 100 targets, in node-id order.")
    targets_truncated: bool = Field(description="Whether the Execution has more targets than `targets` lists.")


class ExecutionView(_ExecutionFields):
    """An Execution with its exact per-status counts and every target."""

    model_config = ConfigDict(title="Execution")

    counts: ExecutionCounts
    targets: list[TargetView] = Field(description="Every target, in node-id order.")
    targets_truncated: Literal[False] = Field(description="Always false: `targets` lists every target.")


class ExecutionList(ResponseBody):
    items: list[ExecutionSummary]
    next_cursor: Omittable[str] = Field(None, description="Absent on the last page.")


class ExecutionEvent(ResponseBody):
    """One entry of the audit trail."""

    id: Id
    status: TargetStatus = Field(
        description="The state the event is about (a target's new state, the dispatch's `pending`, the final status)."
    )
    occurred_at: Timestamp
    node_id: Omittable[Id] = Field(None, description="The target's node (target events only).")
    detail: Omittable[JsonObject] = Field(
        None,
        description="Event-specific: `{dispatched_to}` (dispatch), `{ack, reason?}` (ack), "
        "`{duration?, finished_at?, reported}` (result), `{refused, reason: late_report, late_reports}` "
        "(a refused late report), `{cancelled_targets}` (cancel), `{counts}` (final "
        "status).",
    )
    actor: str = Field(
        description="`user:<subject>` (operator), `node:<node_id>` (node with its NSK), `callback_token` (a"
        " callback-token holder) or `workflow`.",
        examples=[f"node:{EXAMPLE_ID}"],
    )


class ExecutionEventList(ResponseBody):
    items: list[ExecutionEvent]
    next_cursor: Omittable[str] = Field(None, description="Absent on the last page.")


class InlineTargetOutput(ResponseBody):
    kind: Literal["inline"]
    size: int = Field(ge=0, description="Size of the output in bytes.")
    content_base64: str = Field(json_schema_extra={"format": "byte"}, description="The output bytes, base64.")


class StoredTargetOutput(ResponseBody):
    kind: Literal["object_store"]
    size: int = Field(ge=0, description="Size of the object in bytes.")
    sha256: str = Field(pattern=SHA256_HEX, description="SHA-256 of the object, lowercase hex.")
    url: str = Field(json_schema_extra={"format": "uri"}, description="Presigned S3 GET of the object.")
    expires_in: int = Field(description="Seconds the URL stays valid (300).", examples=[300])


TargetOutput = TypeAliasType(
    "TargetOutput",
    Annotated[
        InlineTargetOutput | StoredTargetOutput,
        Field(discriminator="kind", description="The target's output, inline or as a presigned GET URL."),
    ],
)


# Actions ------------------------------------------------------------------------------
class DeclaredParameter(ResponseBody):
    """A parameter as the first declaring node declared it."""

    name: str
    type: Literal["string", "integer", "number", "boolean", "object", "array"]
    required: bool
    description: str
    default: Any = Field(description="Default value (any JSON), null when none.")


class HookChecksumState(ResponseBody):
    baseline: str | None
    state: Literal["consistent", "drift", "no_baseline"]
    drifting_nodes: list[Id] = Field(description="Nodes whose declared checksum differs from the baseline.")


class CatalogEntry(ResponseBody):
    name: str
    type: ActionType
    description: str
    parameters: list[DeclaredParameter]
    input_schema: JsonObject = Field(description="JSON Schema of the first declaration's parameters.")
    dangerous: bool = Field(description="Whether any declaration is dangerous (a dispatch needs `confirmation`).")
    node_count: int = Field(ge=1, description="How many active nodes declare it.")
    checksum: Omittable[HookChecksumState] = Field(None, description="Hooks only.")


class ActionCatalog(ResponseBody):
    items: list[CatalogEntry]


class CohortNode(ResponseBody):
    node_id: Id
    hostname: str


class Cohort(ResponseBody):
    count: int = Field(ge=1)
    nodes: list[CohortNode]


class HookIntegrity(ResponseBody):
    baseline: str | None
    drifting_nodes: list[DriftingNode]


class PrepareResult(ResponseBody):
    action: str
    type: ActionType
    input_schema: JsonObject
    defaults: JsonObject
    requires_confirmation: bool
    cohort: Cohort
    hook: Omittable[HookIntegrity] = Field(None, description="Hooks only.")


class HookBaseline(ResponseBody):
    """The pinned baseline."""

    hook: str
    checksum: str = Field(examples=[EXAMPLE_CHECKSUM])
    pinned_by: str = Field(description="`user:<subject>` of the operator who pinned it.", examples=["user:alice"])


# Node reports -------------------------------------------------------------------------
class CallbackResponse(ResponseBody):
    status: TargetStatus
    output_upload_url: Omittable[str] = Field(
        None,
        json_schema_extra={"format": "uri"},
        description="Presigned S3 PUT whose signed `Content-Length` is `declared_output_bytes`, valid 300 s."
        " Only on the callback that moved the target out of `pending` with `declared_output_bytes` over 16 KiB.",
    )
    output_object_key: Omittable[str] = Field(
        None,
        description="The key to report as `output.object_key` (`outputs/{execution_id}/{node_id}`); present with"
        " `output_upload_url`.",
    )


class ReportResponse(ResponseBody):
    """Answer of the agent-style ack and result routes."""

    status: TargetStatus


# Node reports and drift (SPEC §18) ------------------------------------------------------
class ReportSyncResponse(ResponseBody):
    """The batch was stored whole."""

    accepted: int = Field(description="Entries stored.")
    deleted: int = Field(description="Keys deleted (a key that was not stored counts too).")
    versions: dict[str, int] = Field(description="Each stored entry's key and its version, now the stored one.")


class DriftRecorded(ResponseBody):
    id: Id = Field(description="The drift report's id (kept 30 days).")
    received_at: Timestamp
    corrections: int = Field(description="Corrections recorded.")


class TelemetryAccepted(ResponseBody):
    accepted_at: Timestamp = Field(description="When the batch was accepted: each record's `received_at`.")
    records: int = Field(description="Records kept (0 for an empty batch, which stores nothing).")


class NodeReportView(ResponseBody):
    """A report entry as the node last wrote it."""

    model_config = ConfigDict(title="NodeReport")

    key: str
    content_type: str
    payload: Any = Field(description="The JSON value the node sent.")
    version: int
    updated_at: str = Field(description="The node's time of the entry, as it sent it (RFC 3339).")
    received_at: Timestamp = Field(description="When the control plane stored this version.")


class NodeReportList(ResponseBody):
    items: list[NodeReportView] = Field(description="Most recently written first.")
    next_cursor: Omittable[str] = Field(None, description="Absent on the last page.")


class DriftCorrectionView(ResponseBody):
    model_config = ConfigDict(title="DriftCorrectionEntry")

    type: str
    detail: str


class DriftView(ResponseBody):
    """One drift report: what the node corrected when it reconciled."""

    model_config = ConfigDict(title="NodeDrift")

    id: Id
    timestamp: str = Field(description="The node's time of the report, as it sent it (RFC 3339).")
    received_at: Timestamp
    corrections: list[DriftCorrectionView]


class DriftList(ResponseBody):
    items: list[DriftView] = Field(description="Newest first; reports are kept 30 days.")
    next_cursor: Omittable[str] = Field(None, description="Absent on the last page.")


class TelemetryLine(ResponseBody):
    """One record a node sent, as it sent it, and when it arrived."""

    received_at: Timestamp = Field(description="When the control plane accepted the record's batch.")
    record: dict[str, Any] = Field(
        description="The record as the node sent it (fields unknown to the server included)."
    )


class TelemetryList(ResponseBody):
    items: list[TelemetryLine] = Field(description="Newest first, by arrival.")
    next_cursor: Omittable[str] = Field(
        None, description="Absent when the window is read to its end; a page can be short or empty and still have one."
    )


# The node's event stream (SSE `data:` lines) ---------------------------------------------
class ActionRequestPayload(ResponseBody):
    """Payload of `action_request`, one per target, sent when the target is released."""

    event_id: Id
    occurred_at: Timestamp
    execution_id: Id
    node_id: Id
    action: str
    type: ActionType
    parameters: JsonObject
    timeout_seconds: int
    timeout: str = Field(description="`timeout_seconds` as a Go duration.", examples=["300s"])
    checksum: Omittable[str] = Field(
        None, description="The hook's pinned baseline checksum (`type: hook` only).", examples=[EXAMPLE_CHECKSUM]
    )
    callback_url: str = Field(
        description="`{PublicBaseUrl}/v1/nodes/{node_id}/executions/{execution_id}` (the unified callback)."
    )
    callback_token: str = Field(
        description="Per-invocation callback token (`plx_cb_…`, HMAC-signed, bound to this "
        "`(execution, node)`, valid until the Execution's deadline + 1 h): a bearer the "
        "node can hand to an external process reporting for it on the callback routes."
    )
    triggered_by: TriggeredBy


class ActionCancelPayload(ResponseBody):
    """Payload of `action_cancel`, sent to each node whose invocation an operator cancelled while open."""

    event_id: Id
    occurred_at: Timestamp
    execution_id: Id
    node_id: Id
    action: str
    reason: str = Field(examples=["cancelled by operator"])


class PolicyUpdatedPayload(ResponseBody):
    """Payload of `policy_updated`, one feed event per policy change for the nodes its old or new
    selector matches. plexd does not read it: it pulls `/state` for the rules."""

    event_id: Id
    occurred_at: Timestamp
    policy_id: str
    version: int = Field(ge=1, description="The version written (a deletion's is the last one + 1).")
    deleted: bool


class NodeStateUpdatedPayload(ResponseBody):
    """Payload of `node_state_updated`: the node's whole metadata and every data entry (plexd
    replaces its cache with them)."""

    event_id: Id
    occurred_at: Timestamp
    metadata: JsonObject
    data: list[DataEntryView]


class SecretsUpdatedPayload(ResponseBody):
    """Payload of `node_secrets_updated`, for the nodes granted the secret before or after a
    change: the secret changed and the recipient's whole secret index (never a value)."""

    event_id: Id
    occurred_at: Timestamp
    key: str = Field(description="The secret that changed.")
    version: int = Field(description="Its new version (the deleted one's, with `deleted`).")
    deleted: bool
    secret_refs: list[SecretRef] = Field(
        description="Every secret granted to the recipient at delivery, by name: the agent replaces its index with it."
    )


class SigningKeyRotatedPayload(ResponseBody):
    """Payload of `signing_key_rotated` (from the deployment feed, signed with the previous key):
    the spec's fields and the agent's `SigningKeys` (`current`, `previous`, `transition_expires`)."""

    event_id: Id
    occurred_at: Timestamp
    public_key: str = Field(description="The new key (base64 of the raw 32-byte Ed25519 public key).")
    valid_from: Timestamp
    transition_expires: Timestamp
    current: str = Field(description="Same as `public_key`.")
    previous: str = Field(description="The key it replaces, valid until `transition_expires`.")


class PeerEventPayload(ResponseBody):
    """Payload of `peer_added`, `peer_key_rotated` and `peer_endpoint_changed`, sent to the other
    nodes of the project: the peer's whole entry (the agent re-adds the peer from it), with
    `psk` the pair key of the receiving node and the peer, and `peer_id` beside `id`."""

    allowed_ips: list[str] = Field(min_length=1, max_length=1)
    endpoint: str
    event_id: Id
    id: Id
    mesh_ip: str
    occurred_at: Timestamp
    peer_id: Id
    psk: str
    public_key: str


class PeerRemovedPayload(ResponseBody):
    """Payload of `peer_removed`, sent to the other nodes of the project when a node leaves."""

    event_id: Id
    occurred_at: Timestamp
    peer_id: Id


class RotateKeysPayload(ResponseBody):
    """Payload of `rotate_keys`, sent to a node an operator asked to rotate its mesh key."""

    event_id: Id
    occurred_at: Timestamp
    node_id: Id


class EventEnvelope(ResponseBody):
    """`data` of each SSE message, signed at delivery. `signature` is standard base64
    Ed25519 over the compact JSON of `{event_type, event_id, issued_at, nonce,
    payload}` in that key order, byte for byte as Go `encoding/json` re-marshals it:
    `issued_at` RFC 3339 UTC ending in `Z` without trailing zeros in the fraction;
    `payload` keys sorted; `<`, `>`, `&`, U+2028, U+2029 escaped as `\\u003c`,
    `\\u003e`, `\\u0026`, `\\u2028`, `\\u2029`. Verifiers reject events older than
    5 minutes and reused nonces."""

    event_type: Literal[
        "action_request",
        "action_cancel",
        "signing_key_rotated",
        "policy_updated",
        "node_state_updated",
        "node_secrets_updated",
        "peer_added",
        "peer_removed",
        "peer_key_rotated",
        "peer_endpoint_changed",
        "rotate_keys",
    ]
    event_id: Id
    issued_at: str = Field(json_schema_extra={"format": "date-time"}, examples=["2025-01-01T12:00:00.123Z"])
    nonce: str = Field(description="16 random bytes, base64url without padding; new for every delivery.")
    payload: (
        ActionRequestPayload
        | ActionCancelPayload
        | PolicyUpdatedPayload
        | NodeStateUpdatedPayload
        | SecretsUpdatedPayload
        | SigningKeyRotatedPayload
        | PeerEventPayload
        | PeerRemovedPayload
        | RotateKeysPayload
    )
    signature: str = Field(json_schema_extra={"format": "byte"})


ArtifactStatusField = Literal["pending", "verified", "rejected"]


class ArtifactPublished(ResponseBody):
    """A declared publication and where to upload its bytes."""

    version: str
    os: str
    arch: str
    sha256: str = Field(pattern=SHA256_HEX, description="The declared SHA-256, 64 lower-case hex digits.")
    size: int = Field(ge=1, description="The declared size in bytes.")
    status: Literal["pending"]
    upload_url: str = Field(
        description="Presigned S3 PUT of exactly `size` bytes (SigV4; Content-Length is signed); valid until"
        " `upload_expires_at`."
    )
    upload_expires_at: Timestamp


class ArtifactView(ResponseBody):
    """One publication of the agent: `verified` ones are served to nodes."""

    version: str
    os: str
    arch: str
    sha256: str = Field(pattern=SHA256_HEX)
    size: int = Field(ge=1)
    status: ArtifactStatusField = Field(
        description="`pending` until the uploaded bytes are checked; `verified` (served) or `rejected` (their"
        " SHA-256 or size differed from the declaration; they were deleted)."
    )
    created_at: Timestamp
    published_at: Timestamp | None = Field(description="When the bytes were verified; null before.")
    rejected_reason: Omittable[str] = Field(None, description="Why the uploaded bytes were refused.")


class ArtifactList(ResponseBody):
    items: list[ArtifactView]
    next_cursor: Omittable[str] = Field(None, description="Absent on the last page.")
