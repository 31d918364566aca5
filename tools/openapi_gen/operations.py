"""Every API operation, declared once: what ``api/openapi.yaml`` says about it.

``template.yaml`` routes each (method, path) to its function; this registry adds what the
route does not say: the operation's name and prose, its credential, its request and
response models, its query and header parameters, and which Problem responses it can
answer besides the ones every route shares (413, 415, 501, 503 and the default). The
generator (``make openapi``, ``tools/openapi_gen``) merges the two with the hand-kept
parts of ``api/openapi.base.yaml`` (servers, security schemes, the Problem responses).

It lives with the generator, not in the Lambda layer: no handler needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from orchestrator.domain.artifacts import MAX_VERSION_CHARS, PLATFORM_SLUG, VERSION
from orchestrator.domain.node_data import DATA_KEY
from orchestrator.domain.policies import POLICY_ID
from orchestrator.domain.telemetry import MAX_RECORDS, AuditRecord, LogRecord, MetricRecord
from orchestrator.domain.telemetry_reads import MAX_PAGE_BYTES, MAX_REQUESTS
from orchestrator.http.api import CORRELATION_ID
from orchestrator.http.artifact_schemas import PublishArtifactRequest
from orchestrator.http.callback_schemas import AckIn, CallbackIn, ResultIn
from orchestrator.http.cursor import DEFAULT_LIMIT, MAX_LIMIT
from orchestrator.http.execution_schemas import ACTION_NAME, DispatchRequest, PinBaselineRequest, PrepareRequest
from orchestrator.http.mesh_schemas import EndpointReport, KeyRotateRequest
from orchestrator.http.report_schemas import DriftRequest, ReportSyncRequest
from orchestrator.http.responses import (
    EXAMPLE_ID,
    ActionCatalog,
    ArtifactList,
    ArtifactPublished,
    CallbackResponse,
    CapabilitiesUpdated,
    DataEntryView,
    DeregisterResponse,
    DomainView,
    DriftList,
    DriftRecorded,
    EndpointReported,
    EnrollmentToken,
    EventEnvelope,
    ExecutionEventList,
    ExecutionList,
    ExecutionStatus,
    ExecutionView,
    HeartbeatResponse,
    HookBaseline,
    Id,
    KeyRotated,
    KeyRotationRequested,
    MembershipView,
    NodeDataList,
    NodeList,
    NodeReportList,
    NodeSecret,
    NodeState,
    NodeView,
    Ping,
    PolicyList,
    PolicyView,
    PrepareResult,
    Problem,
    ProjectView,
    Registration,
    ReportResponse,
    ReportSyncResponse,
    SecretList,
    SecretWritten,
    SigningKeyView,
    TargetOutput,
    TelemetryAccepted,
    TelemetryList,
)
from orchestrator.http.schemas import (
    SUBJECT,
    CapabilitiesIn,
    CreateDomainRequest,
    CreateEnrollmentTokenRequest,
    CreateProjectRequest,
    GrantRequest,
    HeartbeatRequest,
    RegisterRequest,
    UpdateDomainRequest,
    UpdateNodeLabelsRequest,
)
from orchestrator.http.secret_schemas import PutSecretRequest
from orchestrator.http.state_schemas import NodeDataRequest, PolicyRequest

JSON = "application/json"
NDJSON = "application/x-ndjson"
TELEMETRY_ERRORS = {400: "IngestBatchMalformed", 413: "IngestBodyTooLarge", 429: "PerNodeRateLimited"}
TELEMETRY_DESCRIPTION = f"""
    A batch of the node's {{kind}} records (SPEC §19): a JSON array, as the agent sends it
    (`application/json`, gzipped over 1 KiB), or one record per line (`application/x-ndjson`);
    `Content-Encoding` `gzip` or `identity`. Every record is checked before anything is kept:
    the batch is accepted whole or refused whole. Each record is kept as sent (fields this
    version does not know included), as one line of gzipped NDJSON in the telemetry bucket
    under `telemetry/{{kind}}/project=…/date=…/hour=…/node=…/` (by arrival, UTC), through the
    delivery stream; the Glue table `{{kind}}` queries them with Athena. An empty batch
    (`[]`, `null`, no body) is accepted and stores nothing.

    **Checks, in this order**: 501 `node_telemetry_not_provisioned`; 401 `nsk_revoked`; 403
    `nsk_node_mismatch`; 413 `ingest_body_too_large` (`dimension`: `compressed_bytes` over
    1 MiB on the wire, `inflated_bytes` over 8 MiB, checked while inflating); 415
    `unsupported_content_encoding`; 400 `invalid_body` (a corrupt gzip stream, not UTF-8);
    400 `ingest_batch_malformed` (`errors`: the records at fault); 413
    `ingest_body_too_large` (`records` over {MAX_RECORDS:,}); 429 `per_node_rate_limited` (the
    node's inflated bytes this minute over its budget; `Retry-After`).
    """
TELEMETRY_READ_DESCRIPTION = f"""
    The node's {{kind}} records (SPEC §19) received in `[since, until)`, newest first by
    arrival (the order the delivery stream wrote them: object by object, line by line), one
    page at a time; each item is the record as the node sent it and its batch's `received_at`.
    Requires `viewer`; a deregistered node's records stay readable until they expire.

    The read walks the node's hours in the telemetry bucket from `until`'s down to `since`'s
    (never below the hour the node registered in), at most {MAX_REQUESTS} S3 requests (LIST
    pages and GETs) and {MAX_PAGE_BYTES // 1_048_576} MiB of records per page: a page can
    therefore be short, even empty, and still carry a `next_cursor`, which resumes exactly
    where it stopped (no record lost or repeated). `next_cursor` is bound to the caller, the
    node, the kind and `since`/`until` as given, and keeps the window of the first page (a
    default `until` does not move). In AWS a record is readable once the delivery stream has
    written its buffer (`TelemetryBufferSeconds`, 60 to 900 s); in local mode at once.

    **Checks, in this order** (after API Gateway's authorizer, 401 `unauthenticated`): 501
    `node_telemetry_listing_not_provisioned` (no table or no telemetry bucket); 400
    `invalid_parameter` (`since` or `until` not RFC 3339, or `since` not before `until`); 400
    `invalid_limit`; the cursor: 501 `cursor_key_not_provisioned`, 503 `dependency_unavailable`
    (secret store), 400 `invalid_cursor`, 403 `cursor_binding_mismatch`; ReBAC `read`: 404
    `project_not_found`, 403 `rebac_denied`; 404 `node_not_found` (not a node of this
    project); 503 `datastore_unavailable`, `dependency_unavailable` (the bucket).
    """
Auth = Literal["operator", "node", "callback", "none"]
"""``operator``: the API's JWT authorizer; ``node``: the node secret key; ``callback``: the
node secret key or the invocation's callback token; ``none``: no bearer."""


@dataclass(frozen=True)
class Parameter:
    """A path, query or header parameter; ``schema`` is a type pydantic describes."""

    name: str
    location: Literal["path", "query", "header"]
    description: str
    schema: Any = str
    required: bool = False


@dataclass(frozen=True)
class Answer:
    """The success response: its status, and its body's model (``None``: no body)."""

    status: int
    description: str
    body: Any = None
    media_type: str = JSON
    headers: Mapping[str, Any] = field(default_factory=dict)  # OpenAPI header objects, besides X-Correlation-Id
    also: Mapping[int, str] = field(default_factory=dict)  # other success statuses with the same body


@dataclass(frozen=True)
class Operation:
    """One (method, path) of ``template.yaml``. ``errors`` maps a status to a response of
    ``api/openapi.base.yaml`` (``#/components/responses/<name>``), over the ones implied by
    ``auth`` and the ones every operation has; ``parameters`` are shared ones by name or
    the operation's own (a path parameter here overrides the path's)."""

    method: str
    path: str
    function: str
    operation_id: str
    tag: str
    summary: str
    description: str
    auth: Auth
    answer: Answer
    request: Any = None  # a model, or any type pydantic describes (a list of records)
    request_media_types: tuple[str, ...] = (JSON,)
    body_optional: bool = False  # an empty body is `{}` (empty_ok)
    errors: Mapping[int, str] = field(default_factory=dict)
    parameters: tuple[Parameter | str, ...] = ()
    uses_aws: bool = True  # False: never 501/503 (no resource behind it)


SECRET_KEY_PARAMETER = Parameter(
    "key",
    "path",
    "The secret's name: `[A-Za-z0-9][A-Za-z0-9._-]{0,127}` (400 `invalid_parameter` otherwise).",
    required=True,
)

ARTIFACT_PARAMETERS = (
    Parameter(
        "version",
        "path",
        "The release's semantic version as plexd reports it (`1.5.0`, `v1.6.0-rc.1`), at most"
        f" {MAX_VERSION_CHARS} characters; compared as written.",
        Annotated[str, Field(pattern=VERSION.pattern, max_length=MAX_VERSION_CHARS)],
        required=True,
    ),
    Parameter(
        "os",
        "path",
        "Go's GOOS (`linux`, `darwin`, `windows`...): 2 to 16 lower-case letters or digits.",
        Annotated[str, Field(pattern=PLATFORM_SLUG.pattern)],
        required=True,
    ),
    Parameter(
        "arch",
        "path",
        "Go's GOARCH (`amd64`, `arm64`, `arm`, `386`...): 2 to 16 lower-case letters or digits.",
        Annotated[str, Field(pattern=PLATFORM_SLUG.pattern)],
        required=True,
    ),
)

SHARED_PARAMETERS: dict[str, Parameter] = {
    "CorrelationIdHeader": Parameter(
        "X-Correlation-Id",
        "header",
        "Optional caller-chosen correlation id, echoed in the `X-Correlation-Id` response header and the Problem"
        " `correlation_id` when it matches the pattern (otherwise the API Gateway request id is used).",
        Annotated[str, Field(pattern=CORRELATION_ID.pattern)],
    ),
    "DomainId": Parameter("domain_id", "path", "The Domain's id.", Id, required=True),
    "ProjectId": Parameter("project_id", "path", "The Project's id.", Id, required=True),
    "NodeId": Parameter("node_id", "path", "The node's id.", Id, required=True),
    "ExecutionId": Parameter("execution_id", "path", "The Execution's id.", Id, required=True),
    "PolicyId": Parameter(
        "policy_id",
        "path",
        "The policy's id, chosen by the admin. Other than the pattern → 400 `invalid_parameter`.",
        Annotated[str, Field(pattern=POLICY_ID.pattern)],
        required=True,
    ),
    "DataKey": Parameter(
        "key",
        "path",
        "The entry's key (plexd stores it as a file name). Other than the pattern → 400 `invalid_parameter`.",
        Annotated[str, Field(pattern=DATA_KEY.pattern)],
        required=True,
    ),
    "Member": Parameter(
        "member",
        "path",
        "The subject (operator JWT `sub`) the relation is granted to, URL-encoded. Other characters than the"
        " pattern's → 400 `invalid_parameter`.",
        Annotated[str, Field(pattern=SUBJECT.pattern)],
        required=True,
    ),
    "Limit": Parameter(
        "limit",
        "query",
        f"Page size, 1..{MAX_LIMIT} (default {DEFAULT_LIMIT}). Anything else is 400 `invalid_limit`, never clamped.",
        Annotated[int, Field(ge=1, le=MAX_LIMIT, default=DEFAULT_LIMIT)],
    ),
    "Cursor": Parameter(
        "cursor",
        "query",
        "The `next_cursor` of the previous page: opaque, HMAC-signed, bound to the caller, the route and the"
        " filters. Tampered or malformed → 400 `invalid_cursor`; minted for another caller or other filters → 403"
        " `cursor_binding_mismatch`.",
    ),
    "IdempotencyKey": Parameter(
        "Idempotency-Key",
        "header",
        "Makes a retry return the first result: the key is scoped to (project, caller) and kept 24 h. A replay"
        " after the first request succeeded answers 201 with that Execution as it is now; while the first request"
        " is still running → 409 `idempotency_key_in_progress`; the same key with a different body → 422"
        " `idempotency_key_reused`. A first request that failed (any error) can be retried with the same key.",
    ),
}
PATH_PARAMETERS = {
    "domain_id": "DomainId",
    "project_id": "ProjectId",
    "node_id": "NodeId",
    "execution_id": "ExecutionId",
    "member": "Member",
    "policy_id": "PolicyId",
    "key": "DataKey",
}
"""Path parameters every path that has them shares (``#/components/parameters/<name>``)."""

EventStream = Annotated[
    str,
    Field(
        description="SSE frames; each `data:` line is an `EventEnvelope` as JSON whose `payload` is an"
        " `ActionRequestPayload` or an `ActionCancelPayload`. Without events the body is only `retry: 1000`.",
        examples=[
            f"id: {EXAMPLE_ID}\nevent: action_request\n"
            f'data: {{"event_type":"action_request","event_id":"{EXAMPLE_ID}",'
            '"issued_at":"2025-01-01T00:00:00.123Z","nonce":"...","payload":{...},"signature":"..."}\n\n'
            "retry: 1000\n"
        ],
    ),
]
DOCUMENTED_MODELS: tuple[type[BaseModel], ...] = (Problem, EventEnvelope)
"""Bodies no operation names: every error (the base file's responses refer to ``Problem``)
and the ``data:`` of the event stream."""


DISPATCH_DESCRIPTION = """
    Creates one Execution with one target (invocation, status `pending`) per node of
    the cohort, takes a slot of the Domain's live-execution budget and starts the
    Execution's workflow, which sends each target's node an `action_request` event.
    Requires `operator` on the project (directly or through the Domain).

    `executions:dispatch` is a static path part (API Gateway allows colons in static
    parts); `POST /v1/projects/{project_id}/executions/dispatch` is the same operation.

    **Cohort.** With `node_id`: that node, which must be a registered, not deregistered
    node of the project (else 404 `node_not_found`) that declares the action with that
    `type` (else 400 `action_not_declared`). With `selector`: every registered, not
    deregistered node of the project whose labels match, minus the nodes that do not
    declare the action with that `type` (none left: 422 `selector_empty_cohort`).

    **Checks, in this order** (after API Gateway's authorizer, 401 `unauthenticated`).
    Apart from the `Idempotency-Key` record (step 5, removed again when the request
    fails), nothing is written before step 10.
    1. Body size: 413 `request_body_too_large` (over 1 MiB).
    2. 501 `actions_dispatch_not_provisioned` when no table is configured.
    3. Body: a JSON object matching `DispatchRequest`; unknown fields are refused →
       400 `invalid_body` (`errors` lists the fields). Exactly one of `node_id` and
       `selector` → else 400 `invalid_target`. Selector syntax → 400
       `malformed_selector` (`position`: 0-based offset of the offending character).
    4. 501 `actions_dispatch_not_provisioned` when no workflow is configured.
    5. `Idempotency-Key` (when sent): the key already used by this caller in this
       project with another body → 422 `idempotency_key_reused`; the first request
       with the key still running → 409 `idempotency_key_in_progress`; the first request
       already succeeded → 201 with that Execution as it is now (the steps below are
       not run again; reading it needs `viewer`).
    6. ReBAC `dispatch`: 404 `project_not_found`, then 403 `rebac_denied`.
    7. Cohort: 404 `node_not_found`, 400 `action_not_declared`, 422
       `selector_empty_cohort`.
    8. Hook integrity (`type: hook`): every target's declared checksum must equal the
       project's pinned baseline → else 409 `hook_integrity_violation` (`hook`,
       `baseline`, and `drifting_nodes` with each drifting target's `node_id`,
       `hostname` and `checksum`; with no baseline pinned, `baseline` is null and
       `drifting_nodes` empty: it fails closed).
    9. Parameters, against every distinct declaration in the cohort: required ones
       present, unknown ones refused, JSON types respected → 422 `invalid_parameters`
       (`problems`); an action declared `dangerous` or `requires_confirmation` needs
       `confirmation: true` → 422 `confirmation_required`.
    10. Capacity: one conditional write takes the slot and writes the Execution; at the
        Domain's ceiling → 429 `capacity_exceeded` (`dimension: action_executions`,
        `limit`: the ceiling).
    11. Targets are written and the workflow started. If that fails, the targets and
        the Execution become `failed` (`error: dispatch_failed`), the slot is released,
        and the answer is 503 `datastore_unavailable` or `dependency_unavailable`
        (workflow service). Every write after the slot re-checks the dispatch's admission:
        a dispatch that outlived the admission sweep's grace (which failed the Execution
        and released the slot) writes nothing more and answers 503 `dispatch_abandoned`.

    The 201 answer of a first dispatch has `status: pending`, every target `pending`,
    `counts.pending` = `target_count` (the other counts 0) and `started_at` null.
    """
DISPATCH_ANSWER = Answer(
    201,
    "The admitted Execution with its targets and counts (or, on an `Idempotency-Key` replay, the first request's"
    " Execution as it is now).",
    ExecutionView,
)
DISPATCH_ERRORS = {
    400: "DispatchRejected",
    403: "RebacDenied",
    404: "DispatchNotFound",
    409: "DispatchConflict",
    422: "DispatchUnprocessable",
    429: "CapacityExceeded",
}
CANCEL_DESCRIPTION = """
    This is the route of `POST /v1/projects/{project_id}/executions/{execution_id}:cancel`:
    API Gateway cannot express a parameter followed by `:cancel` in one path segment, so
    the template routes `POST .../executions/{execution_id}` and the path parameter
    carries `<execution id>:cancel`; any other suffix (or none) is 404
    `route_not_found`. `DELETE .../executions/{execution_id}` (plain id) is the same
    operation. Requires `operator`.

    Cancelling flags the Execution as cancelled by an operator, turns every open
    (`pending`, `ack`, `started`) target into `cancelled` (`error: cancelled by
    operator`), appends an `action_cancel` event to each of those targets' nodes,
    records a `cancelled` audit event (`detail.cancelled_targets`) and finalizes the
    Execution at once (the capacity slot is released exactly once). A node that
    already started may finish, but its later reports are refused with 409
    `execution_already_terminal` and recorded in the audit trail
    (`detail.reason: late_report`). The answer is the Execution afterwards: `status`
    is `cancelled`, or `succeeded` if every target had already succeeded.

    **Checks, in this order** (after API Gateway's authorizer, 401 `unauthenticated`):
    404 `route_not_found` (POST without the `:cancel` suffix); 501
    `execution_cancel_not_provisioned` (no table); ReBAC `cancel`: 404
    `project_not_found`, 403 `rebac_denied`; 404 `execution_not_found`; 409
    `execution_already_terminal` (the Execution is already final).
    """
CANCEL_ANSWER = Answer(200, "The Execution after cancellation, with its counts and targets.", ExecutionView)
CANCEL_ERRORS = {403: "RebacDenied", 404: "ExecutionLookupNotFound", 409: "ExecutionAlreadyTerminal"}


TELEMETRY_READ_PARAMETERS = (
    Parameter(
        "since",
        "query",
        "Only records received at this time or later (RFC 3339; milliseconds count). Default: 24 hours before"
        " `until`. Not RFC 3339, or not before `until` → 400 `invalid_parameter`.",
        Annotated[str, Field(max_length=40)],
    ),
    Parameter(
        "until",
        "query",
        "Only records received before this time (RFC 3339, exclusive). Default: now.",
        Annotated[str, Field(max_length=40)],
    ),
    "Limit",
    "Cursor",
)


def telemetry_read(kind: str, summary: str) -> Operation:
    return Operation(
        "GET",
        f"/v1/projects/{{project_id}}/nodes/{{node_id}}/{kind}",
        function="ReadTelemetryFunction",
        operation_id=f"read{kind.capitalize()}",
        tag="nodes (operator)",
        summary=summary,
        auth="operator",
        answer=Answer(200, "One page of records, newest first.", TelemetryList),
        errors={400: "InvalidListQuery", 403: "ForbiddenListing", 404: "NotFound"},
        parameters=TELEMETRY_READ_PARAMETERS,
        description=TELEMETRY_READ_DESCRIPTION.format(kind=kind),
    )


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "POST",
        "/v1/domains",
        function="CreateDomainFunction",
        operation_id="createDomain",
        tag="tenancy",
        summary="Create a Domain",
        auth="operator",
        request=CreateDomainRequest,
        answer=Answer(201, "The new Domain.", DomainView),
        errors={400: "InvalidBody"},
        description="""
            Creates a Domain (tenant; owns the live-execution budget). Any authenticated
            operator may create one and becomes its `admin` (the Domain and the grant are
            written atomically). `live_execution_ceiling` defaults to the deployment's
            `LiveExecutionCeiling` (100).

            501 `tenancy_not_provisioned` when the table is not configured.
            """,
    ),
    Operation(
        "PATCH",
        "/v1/domains/{domain_id}",
        function="UpdateDomainFunction",
        operation_id="updateDomain",
        tag="tenancy",
        summary="Change a Domain's live-execution ceiling",
        auth="operator",
        request=UpdateDomainRequest,
        answer=Answer(200, "The updated Domain.", DomainView),
        errors={400: "InvalidBody", 403: "RebacDenied", 404: "NotFound"},
        description="""
            Sets the Domain's ceiling of live (non-terminal) Executions. Domain admins only.
            The body is validated before access is checked.

            Problem codes: 400 `invalid_body`; 403 `rebac_denied`; 404 `domain_not_found`;
            501 `tenancy_not_provisioned`.
            """,
    ),
    Operation(
        "POST",
        "/v1/domains/{domain_id}/projects",
        function="CreateProjectFunction",
        operation_id="createProject",
        tag="tenancy",
        summary="Create a Project in a Domain",
        auth="operator",
        request=CreateProjectRequest,
        answer=Answer(201, "The new Project.", ProjectView),
        errors={400: "InvalidBody", 403: "RebacDenied", 404: "NotFound"},
        description="""
            Domain admins only. The Project is written only if its Domain exists (checked in
            the same transaction).

            Problem codes: 400 `invalid_body`; 403 `rebac_denied`; 404 `domain_not_found`;
            501 `tenancy_not_provisioned`.
            """,
    ),
    Operation(
        "PUT",
        "/v1/domains/{domain_id}/members/{member}",
        function="GrantRoleFunction",
        operation_id="grantDomainRole",
        tag="tenancy",
        summary="Grant a relation on a Domain",
        auth="operator",
        request=GrantRequest,
        answer=Answer(200, "The grant as stored.", MembershipView),
        errors={400: "InvalidBodyOrParameter", 403: "RebacDenied", 404: "NotFound"},
        description="""
            Writes (or replaces) the relation tuple `domain:{domain_id}#{relation}@{member}`.
            Domain admins only. A Domain relation holds on every project of the Domain at the
            same level (Domain `viewer` reads all its projects, `operator` also dispatches and
            cancels, `admin` administers them).

            Problem codes: 400 `invalid_body`, `invalid_parameter` (member subject);
            403 `rebac_denied`; 404 `domain_not_found`; 501 `tenancy_not_provisioned`.
            """,
    ),
    Operation(
        "DELETE",
        "/v1/domains/{domain_id}/members/{member}",
        function="RevokeRoleFunction",
        operation_id="revokeDomainRole",
        tag="tenancy",
        summary="Revoke a relation on a Domain",
        auth="operator",
        answer=Answer(204, "Revoked."),
        errors={400: "InvalidParameter", 403: "RebacDenied", 404: "NotFound"},
        description="""
            Deletes the member's relation tuple on the Domain. Domain admins only.

            Problem codes: 400 `invalid_parameter` (member subject); 403 `rebac_denied`;
            404 `domain_not_found`, `member_not_found` (no grant to revoke);
            501 `tenancy_not_provisioned`.
            """,
    ),
    Operation(
        "PUT",
        "/v1/projects/{project_id}/members/{member}",
        function="GrantRoleFunction",
        operation_id="grantProjectRole",
        tag="tenancy",
        summary="Grant a relation on a Project",
        auth="operator",
        request=GrantRequest,
        answer=Answer(200, "The grant as stored.", MembershipView),
        errors={400: "InvalidBodyOrParameter", 403: "RebacDenied", 404: "NotFound"},
        description="""
            Writes (or replaces) the relation tuple `project:{project_id}#{relation}@{member}`.
            Project admins (or admins of the project's Domain) only.

            Problem codes: 400 `invalid_body`, `invalid_parameter` (member subject);
            403 `rebac_denied`; 404 `project_not_found`; 501 `tenancy_not_provisioned`.
            """,
    ),
    Operation(
        "DELETE",
        "/v1/projects/{project_id}/members/{member}",
        function="RevokeRoleFunction",
        operation_id="revokeProjectRole",
        tag="tenancy",
        summary="Revoke a relation on a Project",
        auth="operator",
        answer=Answer(204, "Revoked."),
        errors={400: "InvalidParameter", 403: "RebacDenied", 404: "NotFound"},
        description="""
            Deletes the member's relation tuple on the Project. Project admins (or admins of
            the project's Domain) only.

            Problem codes: 400 `invalid_parameter` (member subject); 403 `rebac_denied`;
            404 `project_not_found`, `member_not_found` (no grant to revoke);
            501 `tenancy_not_provisioned`.
            """,
    ),
    Operation(
        "PUT",
        "/v1/projects/{project_id}/secrets/{key}",
        function="PutSecretFunction",
        operation_id="putSecret",
        tag="secrets",
        summary="Create or update a project secret",
        auth="operator",
        request=PutSecretRequest,
        answer=Answer(200, "The secret's new version (201 when it was created).", SecretWritten),
        errors={400: "SecretRejected", 403: "RebacDenied", 404: "NotFound", 409: "SecretConflict"},
        parameters=(SECRET_KEY_PARAMETER,),
        description="""
            Writes the value as the secret's next version (1 on creation, answered 201; +1 per
            write, answered 200) with its grants: the nodes named in `grants.node_ids` and the
            nodes whose labels match `grants.selector`. The value is encrypted under a fresh KMS
            data key per version and is never readable back. Requires `admin`. Every write is
            one `node_secrets_updated` event to the nodes granted before or after it.

            Problem codes: 400 `invalid_parameter` (the name), `invalid_body`,
            `malformed_selector`; 403 `rebac_denied`; 404 `project_not_found`; 409
            `secret_version_conflict`; 501 `secrets_not_provisioned`; 503
            `datastore_unavailable`, `dependency_unavailable` (KMS).
            """,
    ),
    Operation(
        "GET",
        "/v1/projects/{project_id}/secrets",
        function="ListSecretsFunction",
        operation_id="listSecrets",
        tag="secrets",
        summary="List a project's secrets (never their values)",
        auth="operator",
        answer=Answer(200, "One page of secrets by name; `next_cursor` is absent on the last page.", SecretList),
        errors={400: "InvalidPaging", 403: "ForbiddenListing", 404: "NotFound"},
        parameters=("Limit", "Cursor"),
        description="""
            The project's secrets by name: `key`, `version`, `grants`, `updated_at`. Values
            are never returned. Requires `viewer`.

            Problem codes: 400 `invalid_limit`, `invalid_cursor`; 403 `rebac_denied`,
            `cursor_binding_mismatch`; 404 `project_not_found`; 501 `secrets_not_provisioned`,
            `cursor_key_not_provisioned`; 503 `datastore_unavailable`, `dependency_unavailable`.
            """,
    ),
    Operation(
        "DELETE",
        "/v1/projects/{project_id}/secrets/{key}",
        function="DeleteSecretFunction",
        operation_id="deleteSecret",
        tag="secrets",
        summary="Delete a project secret",
        auth="operator",
        answer=Answer(204, "Deleted."),
        errors={400: "InvalidParameter", 403: "RebacDenied", 404: "NotFound", 409: "SecretConflict"},
        parameters=(SECRET_KEY_PARAMETER,),
        description="""
            Deletes the secret; the nodes it was granted to get `node_secrets_updated`.
            Requires `admin`.

            Problem codes: 400 `invalid_parameter` (the name); 403 `rebac_denied`; 404
            `project_not_found`, `secret_not_found`; 409 `secret_version_conflict`; 501
            `secrets_not_provisioned`; 503 `datastore_unavailable`.
            """,
    ),
    Operation(
        "POST",
        "/v1/projects/{project_id}/enrollment-tokens",
        function="CreateEnrollmentTokenFunction",
        operation_id="createEnrollmentToken",
        tag="nodes (operator)",
        summary="Mint a one-time enrollment token",
        auth="operator",
        request=CreateEnrollmentTokenRequest,
        body_optional=True,
        answer=Answer(201, "The token and its expiry.", EnrollmentToken),
        errors={400: "InvalidBody", 403: "RebacDenied", 404: "NotFound"},
        description="""
            Mints a bootstrap token for `POST /v1/register` (project admins only). The token is
            returned here only; the store keeps its hash. The body is optional (empty or `{}`
            uses the deployment's `EnrollmentTokenTtlSeconds`, default 86400).

            Problem codes: 400 `invalid_body`; 403 `rebac_denied`; 404 `project_not_found`;
            501 `enrollment_tokens_not_provisioned`.
            """,
    ),
    Operation(
        "GET",
        "/v1/projects/{project_id}/nodes",
        function="ListNodesFunction",
        operation_id="listNodes",
        tag="nodes (operator)",
        summary="List a project's nodes",
        auth="operator",
        answer=Answer(200, "One page of nodes; `next_cursor` is absent on the last page.", NodeList),
        errors={400: "InvalidPaging", 403: "ForbiddenListing", 404: "NotFound"},
        parameters=("Limit", "Cursor"),
        description="""
            The project's nodes (deregistered ones included, with `status: deregistered`) in
            registration order (UUIDv7), one page at a time. Requires `viewer`. `limit` and
            `cursor` are checked before access.

            Problem codes: 400 `invalid_limit`, `invalid_cursor`; 403 `rebac_denied`,
            `cursor_binding_mismatch`; 404 `project_not_found`; 501
            `node_listing_not_provisioned`, `cursor_key_not_provisioned`; 503
            `datastore_unavailable`, `dependency_unavailable` (secret store).
            """,
    ),
    Operation(
        "GET",
        "/v1/projects/{project_id}/nodes/{node_id}/reports",
        function="ListNodeReportsFunction",
        operation_id="listNodeReports",
        tag="nodes (operator)",
        summary="A node's report entries",
        auth="operator",
        answer=Answer(200, "One page of report entries; `next_cursor` is absent on the last page.", NodeReportList),
        errors={400: "InvalidPaging", 403: "ForbiddenListing", 404: "NotFound"},
        parameters=("Limit", "Cursor"),
        description="""
            The node's current report entries, the most recently written first, one page at a
            time (a query of an index, never a scan). Requires `viewer`. A deregistered
            node's entries stay readable. `limit` and `cursor` are checked before access.

            Problem codes: 400 `invalid_limit`, `invalid_cursor`; 403 `rebac_denied`,
            `cursor_binding_mismatch`; 404 `project_not_found`, `node_not_found` (not a node
            of this project); 501 `node_report_listing_not_provisioned`,
            `cursor_key_not_provisioned`; 503 `datastore_unavailable`,
            `dependency_unavailable` (secret store).
            """,
    ),
    Operation(
        "GET",
        "/v1/projects/{project_id}/nodes/{node_id}/drift",
        function="ListNodeDriftFunction",
        operation_id="listNodeDrift",
        tag="nodes (operator)",
        summary="A node's drift reports",
        auth="operator",
        answer=Answer(200, "One page of drift reports; `next_cursor` is absent on the last page.", DriftList),
        errors={400: "InvalidPaging", 403: "ForbiddenListing", 404: "NotFound"},
        parameters=("Limit", "Cursor"),
        description="""
            What the node corrected when it reconciled, newest first, over the last 30 days,
            one page at a time. Requires `viewer`. `limit` and `cursor` are checked before
            access.

            Problem codes: 400 `invalid_limit`, `invalid_cursor`; 403 `rebac_denied`,
            `cursor_binding_mismatch`; 404 `project_not_found`, `node_not_found` (not a node
            of this project); 501 `node_drift_listing_not_provisioned`,
            `cursor_key_not_provisioned`; 503 `datastore_unavailable`,
            `dependency_unavailable` (secret store).
            """,
    ),
    telemetry_read("logs", "A node's log records"),
    telemetry_read("metrics", "A node's metric records"),
    telemetry_read("audit", "A node's audit records"),
    Operation(
        "PATCH",
        "/v1/projects/{project_id}/nodes/{node_id}",
        function="UpdateNodeLabelsFunction",
        operation_id="updateNodeLabels",
        tag="nodes (operator)",
        summary="Set or remove operator labels on a node",
        auth="operator",
        request=UpdateNodeLabelsRequest,
        answer=Answer(200, "The node after the change.", NodeView),
        errors={400: "InvalidBody", 403: "RebacDenied", 404: "NotFound", 409: "NodeDeregistered"},
        description="""
            Sets each label given with a string value and removes each label given as `null`;
            other labels are untouched (one atomic conditional update). Project admins only.

            Problem codes: 400 `invalid_body`; 403 `rebac_denied`; 404 `project_not_found`,
            `node_not_found` (not in this project); 409 `node_deregistered`;
            501 `node_labels_not_provisioned`.
            """,
    ),
    Operation(
        "PUT",
        "/v1/projects/{project_id}/policies/{policy_id}",
        function="PutPolicyFunction",
        operation_id="putPolicy",
        tag="policies",
        summary="Create or replace a network policy",
        auth="operator",
        request=PolicyRequest,
        answer=Answer(
            201, "The policy, created (version 1).", PolicyView, also={200: "The policy, replaced (version + 1)."}
        ),
        errors={400: "PolicyRejected", 403: "RebacDenied", 404: "NotFound", 409: "PolicyConflict"},
        description="""
            Writes the whole policy: the nodes whose labels its `selector` matches get its
            `rules`. Each write is one transaction of the policy (conditional on the version
            read) and ONE `policy_updated` event in the project feed, delivered to the nodes
            the old or the new selector matches (`{policy_id, version, deleted}`; plexd then
            pulls `/state`). Rules are what plexd enforces: `src`/`dst` a node id or `*`,
            `port` 0 (any) to 65535 needing `tcp` or `udp`, `protocol` `tcp`, `udp` or
            `any`, `action` `allow` or `deny`. Project admins only.

            Problem codes: 400 `invalid_parameter`, `invalid_body`, `malformed_selector`;
            403 `rebac_denied`; 404 `project_not_found`; 409 `policy_conflict`;
            501 `policies_not_provisioned`.
            """,
    ),
    Operation(
        "GET",
        "/v1/projects/{project_id}/policies/{policy_id}",
        function="GetPolicyFunction",
        operation_id="getPolicy",
        tag="policies",
        summary="Read a network policy",
        auth="operator",
        answer=Answer(200, "The policy.", PolicyView),
        errors={400: "InvalidParameter", 403: "RebacDenied", 404: "NotFound"},
        description="""
            Requires `viewer`.

            Problem codes: 400 `invalid_parameter`; 403 `rebac_denied`; 404
            `project_not_found`, `policy_not_found`; 501 `policies_not_provisioned`.
            """,
    ),
    Operation(
        "GET",
        "/v1/projects/{project_id}/policies",
        function="ListPoliciesFunction",
        operation_id="listPolicies",
        tag="policies",
        summary="List a project's network policies",
        auth="operator",
        answer=Answer(200, "One page of policies; `next_cursor` is absent on the last page.", PolicyList),
        errors={400: "InvalidPaging", 403: "ForbiddenListing", 404: "NotFound"},
        parameters=("Limit", "Cursor"),
        description="""
            The project's policies in policy id order (ids are chosen by admins, so there is
            no creation order), one page at a time. Requires `viewer`.

            Problem codes: 400 `invalid_limit`, `invalid_cursor`; 403 `rebac_denied`,
            `cursor_binding_mismatch`; 404 `project_not_found`; 501
            `policies_not_provisioned`, `cursor_key_not_provisioned`.
            """,
    ),
    Operation(
        "DELETE",
        "/v1/projects/{project_id}/policies/{policy_id}",
        function="DeletePolicyFunction",
        operation_id="deletePolicy",
        tag="policies",
        summary="Delete a network policy",
        auth="operator",
        answer=Answer(204, "Deleted."),
        errors={400: "InvalidParameter", 403: "RebacDenied", 404: "NotFound", 409: "PolicyConflict"},
        description="""
            Deletes the policy and, in the same transaction, writes one `policy_updated`
            (`deleted: true`) for the nodes its selector matches. Project admins only.

            Problem codes: 400 `invalid_parameter`; 403 `rebac_denied`; 404
            `project_not_found`, `policy_not_found`; 409 `policy_conflict`; 501
            `policies_not_provisioned`.
            """,
    ),
    Operation(
        "PUT",
        "/v1/projects/{project_id}/nodes/{node_id}/data/{key}",
        function="PutNodeDataFunction",
        operation_id="putNodeData",
        tag="nodes (operator)",
        summary="Write a data entry for a node",
        auth="operator",
        request=NodeDataRequest,
        answer=Answer(
            201, "The entry, created (version 1).", DataEntryView, also={200: "The entry, replaced (version + 1)."}
        ),
        errors={
            400: "InvalidBodyOrParameter",
            403: "RebacDenied",
            404: "NotFound",
            409: "NodeDataConflict",
            422: "NodeDataTooLarge",
        },
        description="""
            Writes the entry and sends the node one `node_state_updated` with its metadata
            and every entry (plexd replaces its cache with that payload), in one transaction
            that also bumps the node's data revision, so concurrent writes to one node are
            serialized. Requires `operator`.

            Problem codes: 400 `invalid_parameter`, `invalid_body`; 403 `rebac_denied`; 404
            `project_not_found`, `node_not_found` (not in this project); 409
            `node_deregistered`, `node_data_conflict`; 422 `node_data_too_large`; 501
            `node_data_not_provisioned`.
            """,
    ),
    Operation(
        "DELETE",
        "/v1/projects/{project_id}/nodes/{node_id}/data/{key}",
        function="DeleteNodeDataFunction",
        operation_id="deleteNodeData",
        tag="nodes (operator)",
        summary="Delete a node's data entry",
        auth="operator",
        answer=Answer(204, "Deleted."),
        errors={400: "InvalidParameter", 403: "RebacDenied", 404: "NotFound", 409: "NodeDataConflict"},
        description="""
            Deletes the entry and sends the node `node_state_updated` with the entries left.
            Requires `operator`.

            Problem codes: 400 `invalid_parameter`; 403 `rebac_denied`; 404
            `project_not_found`, `node_not_found`, `node_data_not_found`; 409
            `node_deregistered`, `node_data_conflict`; 501 `node_data_not_provisioned`.
            """,
    ),
    Operation(
        "GET",
        "/v1/projects/{project_id}/nodes/{node_id}/data",
        function="ListNodeDataFunction",
        operation_id="listNodeData",
        tag="nodes (operator)",
        summary="List a node's data entries",
        auth="operator",
        answer=Answer(200, "Every entry of the node, in key order.", NodeDataList),
        errors={403: "RebacDenied", 404: "NotFound"},
        description="""
            A node's entries are bounded (32 KiB of JSON together), so they come in one
            answer without a cursor. Requires `viewer`.

            Problem codes: 403 `rebac_denied`; 404 `project_not_found`, `node_not_found`;
            501 `node_data_not_provisioned`.
            """,
    ),
    Operation(
        "POST",
        "/v1/projects/{project_id}/nodes/{node_id}/rotate-keys",
        function="RequestKeyRotationFunction",
        operation_id="requestNodeKeyRotation",
        tag="nodes (operator)",
        summary="Ask a node to rotate its mesh key",
        auth="operator",
        answer=Answer(202, "The request is recorded.", KeyRotationRequested),
        errors={403: "RebacDenied", 404: "NotFound", 409: "NodeDeregistered"},
        description="""
            Flags the node so that its next heartbeat answers `rotate_keys: true`, and sends
            `rotate_keys` to its event stream. The node completes the rotation with
            `POST /v1/keys/rotate`, which clears the flag. Operators and above. No body.

            Problem codes: 403 `rebac_denied`; 404 `project_not_found`, `node_not_found`
            (not in this project); 409 `node_deregistered`; 501
            `node_key_rotation_not_provisioned`.
            """,
    ),
    Operation(
        "POST",
        "/v1/projects/{project_id}/executions:dispatch",
        function="DispatchExecutionFunction",
        operation_id="dispatchExecution",
        tag="executions",
        summary="Dispatch an action to a node or a selector cohort",
        auth="operator",
        request=DispatchRequest,
        answer=DISPATCH_ANSWER,
        errors=DISPATCH_ERRORS,
        parameters=("IdempotencyKey",),
        description=DISPATCH_DESCRIPTION,
    ),
    Operation(
        "POST",
        "/v1/projects/{project_id}/executions/dispatch",
        function="DispatchExecutionFunction",
        operation_id="dispatchExecutionSlashSpelling",
        tag="executions",
        summary="Dispatch an action (slash spelling of executions:dispatch)",
        auth="operator",
        request=DispatchRequest,
        answer=DISPATCH_ANSWER,
        errors=DISPATCH_ERRORS,
        parameters=("IdempotencyKey",),
        description=DISPATCH_DESCRIPTION,
    ),
    Operation(
        "GET",
        "/v1/projects/{project_id}/executions",
        function="ListExecutionsFunction",
        operation_id="listExecutions",
        tag="executions",
        summary="List the project's Executions",
        auth="operator",
        answer=Answer(200, "One page of Executions; `next_cursor` is absent on the last page.", ExecutionList),
        errors={400: "InvalidListQuery", 403: "ForbiddenListing", 404: "NotFound"},
        parameters=(
            Parameter(
                "status",
                "query",
                "Only Executions whose listed status is this (else 400 `invalid_parameter`).",
                ExecutionStatus,
            ),
            Parameter(
                "action_name",
                "query",
                "Only Executions of this action (a valid action name, else 400 `invalid_parameter`).",
                Annotated[str, Field(pattern=ACTION_NAME)],
            ),
            "Cursor",
            "Limit",
        ),
        description="""
            The project's Executions in creation order (UUIDv7), one page at a time, filtered
            by `status` and/or `action_name` (each served by an index; with both, the action's
            index is read and filtered by status). Requires `viewer`. Items carry no `counts`
            and no `targets` (read one Execution for those), and their `status` is the listed
            status, which the workflow updates at each progress check: it can lag the exact
            aggregate of `GET .../executions/{execution_id}` by one poll. `next_cursor` is bound
            to the caller and the filters, and is absent on the last page.

            **Checks, in this order** (after API Gateway's authorizer, 401 `unauthenticated`):
            501 `executions_read_not_provisioned` (no table); 400 `invalid_parameter`
            (`status` not one of the seven statuses, `action_name` not a valid action name);
            400 `invalid_limit`; the cursor: 501 `cursor_key_not_provisioned`, 503
            `dependency_unavailable` (secret store), 400 `invalid_cursor`, 403
            `cursor_binding_mismatch`; ReBAC `read`: 404 `project_not_found`, 403
            `rebac_denied`.
            """,
    ),
    Operation(
        "GET",
        "/v1/projects/{project_id}/executions/{execution_id}",
        function="GetExecutionFunction",
        operation_id="getExecution",
        tag="executions",
        summary="Read one Execution",
        auth="operator",
        answer=Answer(200, "The Execution.", ExecutionView),
        errors={403: "RebacDenied", 404: "ExecutionLookupNotFound"},
        description="""
            The Execution with its exact per-status `counts` and every target. Until the
            Execution is final its `status` is computed from the exact counters (SPEC §8
            aggregate); once final, the recorded status. Requires `viewer`.

            **Checks, in this order** (after API Gateway's authorizer, 401 `unauthenticated`):
            501 `executions_read_not_provisioned` (no table); ReBAC `read`: 404
            `project_not_found`, 403 `rebac_denied`; 404 `execution_not_found` (no such
            Execution in this project).
            """,
    ),
    Operation(
        "POST",
        "/v1/projects/{project_id}/executions/{execution_id}",
        function="CancelExecutionFunction",
        operation_id="cancelExecution",
        tag="executions",
        summary="Cancel an Execution (`{execution_id}:cancel`)",
        auth="operator",
        answer=CANCEL_ANSWER,
        errors=CANCEL_ERRORS,
        parameters=(
            Parameter(
                "execution_id",
                "path",
                f"The Execution id followed by the literal `:cancel`, e.g. `{EXAMPLE_ID}:cancel`.",
                Annotated[str, Field(pattern="^[^:]+:cancel$")],
                required=True,
            ),
        ),
        description=CANCEL_DESCRIPTION,
    ),
    Operation(
        "DELETE",
        "/v1/projects/{project_id}/executions/{execution_id}",
        function="CancelExecutionFunction",
        operation_id="cancelExecutionByDelete",
        tag="executions",
        summary="Cancel an Execution (DELETE spelling)",
        auth="operator",
        answer=CANCEL_ANSWER,
        errors=CANCEL_ERRORS,
        description=CANCEL_DESCRIPTION,
    ),
    Operation(
        "GET",
        "/v1/projects/{project_id}/executions/{execution_id}/events",
        function="ListExecutionEventsFunction",
        operation_id="listExecutionEvents",
        tag="executions",
        summary="An Execution's audit trail",
        auth="operator",
        answer=Answer(
            200, "One page of the audit trail; `next_cursor` is absent on the last page.", ExecutionEventList
        ),
        errors={400: "InvalidPaging", 403: "ForbiddenListing", 404: "ExecutionLookupNotFound"},
        parameters=("Cursor", "Limit"),
        description="""
            The Execution's audit events in the order they happened (UUIDv7), one page at a
            time. Requires `viewer`. Events are written for the dispatch (`pending`,
            `detail.dispatched_to`), every accepted target transition (with `node_id`;
            `detail` carries the ack or result fields), refused late reports
            (`detail: {refused, reason: late_report, late_reports}`, the first 10 per
            target), an operator cancel (`cancelled`, `detail.cancelled_targets`) and the
            final status (`actor: workflow`, `detail.counts`).

            **Checks, in this order** (after API Gateway's authorizer, 401 `unauthenticated`):
            501 `executions_read_not_provisioned` (no table); 400 `invalid_limit`; the cursor:
            501 `cursor_key_not_provisioned`, 503 `dependency_unavailable` (secret store), 400
            `invalid_cursor`, 403 `cursor_binding_mismatch`; ReBAC `read`: 404
            `project_not_found`, 403 `rebac_denied`; 404 `execution_not_found`.
            """,
    ),
    Operation(
        "GET",
        "/v1/projects/{project_id}/executions/{execution_id}/targets/{node_id}/output",
        function="GetTargetOutputFunction",
        operation_id="getTargetOutput",
        tag="executions",
        summary="A target's output",
        auth="operator",
        answer=Answer(
            200,
            "The inline output bytes (base64), or a presigned GET URL for an output in the object store.",
            TargetOutput,
        ),
        errors={403: "RebacDenied", 404: "TargetOutputNotFound"},
        description="""
            The output the target reported. Inline outputs (at most 16 KiB, stored with the
            invocation) come back as `{kind: inline, size, content_base64}`; outputs in the
            object store as `{kind: object_store, size, sha256, url, expires_in}`, where `url`
            is a presigned S3 GET valid `expires_in` (300) seconds. Output reported through
            `/result` is the JSON document `{"stdout": ..., "stderr": ...}`. Requires `viewer`.

            **Checks, in this order** (after API Gateway's authorizer, 401 `unauthenticated`):
            501 `execution_output_not_provisioned` (no table); ReBAC `read`: 404
            `project_not_found`, 403 `rebac_denied`; 404 `execution_not_found` (no such
            Execution in this project, or the node is not one of its targets); 404
            `output_not_found` (the target has reported no output).
            """,
    ),
    Operation(
        "GET",
        "/v1/projects/{project_id}/actions",
        function="ListActionsFunction",
        operation_id="listActions",
        tag="actions",
        summary="The project's action catalog",
        auth="operator",
        answer=Answer(200, "The action catalog.", ActionCatalog),
        errors={403: "RebacDenied", 404: "NotFound"},
        description="""
            Every builtin and hook the project's active nodes declare, sorted by type and name:
            the first declaration's description and parameters (and a JSON Schema of them),
            whether any declaration is dangerous, how many nodes declare it, and for hooks the
            checksum state against the pinned baseline (`consistent`, `drift` with the drifting
            node ids, or `no_baseline`). Requires `viewer`. Not paginated (one entry per
            distinct action).

            Problem codes: 403 `rebac_denied`; 404 `project_not_found`; 501
            `action_catalog_not_provisioned` (no table configured); 503 `datastore_unavailable`.
            """,
    ),
    Operation(
        "POST",
        "/v1/projects/{project_id}/actions/{action}",
        function="PrepareActionFunction",
        operation_id="prepareAction",
        tag="actions",
        summary="Two-phase prepare of an action (`{action}:prepare`, dry run)",
        auth="operator",
        request=PrepareRequest,
        body_optional=True,
        answer=Answer(200, "Input schema, defaults and the would-be cohort.", PrepareResult),
        errors={400: "InvalidBody", 403: "RebacDenied", 404: "NotFound"},
        parameters=(
            Parameter(
                "action",
                "path",
                "The action name followed by the literal `:prepare`, e.g. `restart-service:prepare`.",
                Annotated[str, Field(pattern=ACTION_NAME.removesuffix("$") + ":prepare$")],
                required=True,
            ),
        ),
        description="""
            This is the route of `POST /v1/projects/{project_id}/actions/{action}:prepare`:
            API Gateway cannot express a parameter followed by `:prepare` in one path segment,
            so the template routes `POST .../actions/{action}` and the path parameter carries
            `<action name>:prepare`.

            Returns the action's input schema (JSON Schema of the first declaration's
            parameters), its defaults, whether a dispatch needs `confirmation`, and the cohort a
            dispatch with the same target would hit; for hooks, the baseline and the drifting
            nodes. A dry run: nothing is written. Requires `viewer`. The body takes `type`
            (`builtin` default | `hook`) and exactly one of `node_id` | `selector`, with the
            dispatch's target rules.

            Problem codes: 400 `invalid_body`, `invalid_target`, `malformed_selector`,
            `action_not_declared`, `invalid_parameter` (action name); 403 `rebac_denied`; 404
            `project_not_found`, `node_not_found`, `route_not_found` (a suffix other than
            `:prepare`); 422 `selector_empty_cohort`; 501 `action_prepare_not_provisioned`;
            503 `datastore_unavailable`.
            """,
    ),
    Operation(
        "PUT",
        "/v1/projects/{project_id}/hooks/{name}/baseline",
        function="PinHookBaselineFunction",
        operation_id="pinHookBaseline",
        tag="actions",
        summary="Pin a hook's known-good sha256",
        auth="operator",
        request=PinBaselineRequest,
        answer=Answer(200, "The pinned baseline.", HookBaseline),
        errors={400: "InvalidBody", 403: "RebacDenied", 404: "NotFound"},
        parameters=(
            Parameter(
                "name",
                "path",
                "The hook's name, as nodes declare it. It is not checked against the nodes' declarations: a baseline"
                " can be pinned before any node declares the hook.",
                required=True,
            ),
        ),
        description="""
            Pins (or re-pins) the project's baseline checksum for the hook, replacing any earlier
            one. Hook dispatches require every target's declared checksum to equal the
            baseline (409 `hook_integrity_violation` otherwise). The first checksum a node
            ever declares for a hook becomes its baseline (trust on first use); this operation
            is how an operator accepts a new version. Project admins only (a Domain admin is
            admin of its projects).

            **Checks, in this order** (after API Gateway's authorizer, 401 `unauthenticated`):
            413 `request_body_too_large`; 400 `invalid_body` (not `{checksum}` with a
            `sha256:` + 64 lowercase hex digits value; unknown fields are refused); 501
            `hook_baselines_not_provisioned` (no table); ReBAC `admin`: 404
            `project_not_found`, 403 `rebac_denied`.
            """,
    ),
    Operation(
        "POST",
        "/v1/register",
        function="RegisterNodeFunction",
        operation_id="registerNode",
        tag="nodes (agent)",
        summary="Register a node with a one-time enrollment token",
        auth="none",
        request=RegisterRequest,
        answer=Answer(201, "The node's identity and credentials.", Registration),
        errors={
            400: "InvalidBody",
            401: "EnrollmentTokenInvalid",
            409: "HostnameAlreadyRegistered",
            422: "CapabilitiesInvalid",
        },
        description="""
            No bearer: the enrollment token (from `POST /v1/projects/{project_id}/enrollment-tokens`)
            is in the body and is consumed atomically with the hostname claim and the node's
            creation. Unknown body fields are ignored (agents may be newer than the control
            plane). The node's labels are the `metadata` entries whose key and scalar value are
            valid label tokens. The node secret key (NSK) is returned here only; the store
            keeps its hash.

            Problem codes: 400 `invalid_body`; 401 `enrollment_token_invalid` (unknown,
            expired or already used; checked before the capabilities); 409
            `hostname_already_registered` (in the token's project; the token stays unused);
            422 `builtin_action_invalid`, `builtin_action_duplicate`, `hook_invalid`,
            `hook_duplicate`; 501 `node_registration_not_provisioned`,
            `signing_key_not_provisioned`; 503 `datastore_unavailable`,
            `dependency_unavailable` (secret store).
            """,
    ),
    Operation(
        "PUT",
        "/v1/nodes/{node_id}/capabilities",
        function="UpdateCapabilitiesFunction",
        operation_id="updateCapabilities",
        tag="nodes (agent)",
        summary="A node declares its capabilities",
        auth="node",
        request=CapabilitiesIn,
        answer=Answer(200, "The stored capabilities (summary).", CapabilitiesUpdated),
        errors={400: "InvalidBody", 409: "NodeDeregistered", 422: "CapabilitiesInvalid"},
        description="""
            Replaces the node's declared binary, builtin actions and hooks. The NSK is checked
            before the body. Unknown body fields are ignored.

            Problem codes: 400 `invalid_body`; 401 `nsk_revoked`; 403 `nsk_node_mismatch`;
            409 `node_deregistered` (deregistered concurrently); 422 `builtin_action_invalid`
            (e.g. empty name), `builtin_action_duplicate`, `hook_invalid`, `hook_duplicate`;
            501 `node_capabilities_not_provisioned`.
            """,
    ),
    Operation(
        "GET",
        "/v1/ping",
        function="PingFunction",
        operation_id="ping",
        tag="nodes (agent)",
        summary="Health check",
        auth="none",
        answer=Answer(200, "The control plane is up.", Ping),
        uses_aws=False,
        errors={},
        description="""
            The node agent's health check: no credential, no body, touches no AWS service, so
            it answers 200 whenever the API and its functions are up (it never answers 501 or
            503).
            """,
    ),
    Operation(
        "POST",
        "/v1/nodes/{node_id}/heartbeat",
        function="HeartbeatFunction",
        operation_id="heartbeat",
        tag="nodes (agent)",
        summary="Node heartbeat",
        auth="node",
        request=HeartbeatRequest,
        body_optional=True,
        answer=Answer(200, "Pending requests for the node.", HeartbeatResponse),
        errors={400: "InvalidBody", 409: "NodeDeregistered"},
        description="""
            Records liveness (a node is `online` while heard from within 90 s, then `stale`)
            and answers, once, whether the control plane asked the node to reconcile or to
            rotate its keys (the flags are cleared by this call). The body is optional;
            unknown fields are ignored and the known ones are kept (truncated to 256
            characters) as the last heartbeat report.

            Problem codes: 400 `invalid_body`; 401 `nsk_revoked`; 403 `nsk_node_mismatch`;
            409 `node_deregistered` (deregistered concurrently); 501
            `node_heartbeat_not_provisioned`.
            """,
    ),
    Operation(
        "POST",
        "/v1/nodes/{node_id}/report",
        function="SyncReportsFunction",
        operation_id="syncReports",
        tag="nodes (agent)",
        summary="Report entry sync (a batch, all or nothing)",
        auth="node",
        request=ReportSyncRequest,
        answer=Answer(200, "The whole batch was stored.", ReportSyncResponse),
        errors={400: "InvalidBody", 409: "ReportVersionConflict", 413: "ReportTooLarge"},
        description="""
            The agent's report entries (debounced batches). The batch is one transaction:
            each entry is stored only over an older version of its key (or none), each
            `deleted` key is removed (a key never stored too), and either all of it is
            written or nothing. `entries` and `deleted` may be `null` (Go's nil slice).

            **Checks, in this order**: 413 `request_body_too_large`; 501
            `node_reports_not_provisioned`; 401 `nsk_revoked`; 403 `nsk_node_mismatch`; 400
            `invalid_body` (the schema); 413 `report_batch_too_large` (more than 100 entries
            and deleted keys together), `report_payload_too_large` (`keys`); 400
            `invalid_body` (a key twice in the batch, `keys`); 409 `report_version_conflict`
            (`keys`: every entry whose `version` is not greater than the stored one).
            """,
    ),
    Operation(
        "POST",
        "/v1/nodes/{node_id}/drift",
        function="RecordDriftFunction",
        operation_id="recordDrift",
        tag="nodes (agent)",
        summary="Drift reporting",
        auth="node",
        request=DriftRequest,
        answer=Answer(200, "The drift report was kept.", DriftRecorded),
        errors={400: "InvalidBody", 413: "DriftTooLarge"},
        description="""
            What the agent corrected when it reconciled. Each report is kept 30 days and is
            readable by the project's operators (`GET .../nodes/{node_id}/drift`).
            `corrections` may be `null` (Go's nil slice); at most 200.

            **Checks, in this order**: 413 `request_body_too_large`; 501
            `node_drift_not_provisioned`; 401 `nsk_revoked`; 403 `nsk_node_mismatch`; 400
            `invalid_body`; 413 `drift_too_large` (the corrections' text over 256 KiB of
            UTF-8: the schema's bounds count characters, and the report must fit one item).
            """,
    ),
    Operation(
        "POST",
        "/v1/nodes/{node_id}/metrics",
        function="IngestTelemetryFunction",
        operation_id="ingestMetrics",
        tag="nodes (agent)",
        summary="Metrics batch",
        auth="node",
        request=list[MetricRecord],
        request_media_types=(JSON, NDJSON),
        answer=Answer(202, "The whole batch was accepted.", TelemetryAccepted),
        errors=TELEMETRY_ERRORS,
        description=TELEMETRY_DESCRIPTION.format(kind="metrics"),
    ),
    Operation(
        "POST",
        "/v1/nodes/{node_id}/logs",
        function="IngestTelemetryFunction",
        operation_id="ingestLogs",
        tag="nodes (agent)",
        summary="Log batch",
        auth="node",
        request=list[LogRecord],
        request_media_types=(JSON, NDJSON),
        answer=Answer(202, "The whole batch was accepted.", TelemetryAccepted),
        errors=TELEMETRY_ERRORS,
        description=TELEMETRY_DESCRIPTION.format(kind="logs"),
    ),
    Operation(
        "POST",
        "/v1/nodes/{node_id}/audit",
        function="IngestTelemetryFunction",
        operation_id="ingestAudit",
        tag="nodes (agent)",
        summary="Audit batch",
        auth="node",
        request=list[AuditRecord],
        request_media_types=(JSON, NDJSON),
        answer=Answer(202, "The whole batch was accepted.", TelemetryAccepted),
        errors=TELEMETRY_ERRORS,
        description=TELEMETRY_DESCRIPTION.format(kind="audit"),
    ),
    Operation(
        "POST",
        "/v1/keys/rotate",
        function="RotateNodeKeyFunction",
        operation_id="rotateNodeKey",
        tag="nodes (agent)",
        summary="A node's new mesh key",
        auth="node",
        request=KeyRotateRequest,
        answer=Answer(200, "The node's peers, with the pair keys of its new key.", KeyRotated),
        errors={400: "InvalidBody", 409: "MeshEntryConflict", 422: "PublicKeyInvalid"},
        description="""
            Stores the node's new Curve25519 public key, bumps its key version (so every pair
            key of it changes), clears a pending rotation request and tells every other node
            of the project with `peer_key_rotated` (its peer entry, with their new pair key),
            in one transaction. The bearer NSK must be that of the node named in the body.

            Problem codes: 401 `nsk_revoked` (no key, or not the key of an active node);
            400 `invalid_body`; 403 `nsk_node_mismatch`; 422 `public_key_invalid`; 409
            `node_deregistered`, `peer_entry_conflict`; 501
            `node_key_rotation_not_provisioned`, `mesh_not_provisioned`.
            """,
    ),
    Operation(
        "PUT",
        "/v1/nodes/{node_id}/endpoint",
        function="ReportEndpointFunction",
        operation_id="reportEndpoint",
        tag="nodes (agent)",
        summary="The node's public endpoint (NAT discovery)",
        auth="node",
        request=EndpointReport,
        answer=Answer(200, "The known endpoints of the node's peers.", EndpointReported),
        errors={400: "InvalidBodyOrEndpoint", 409: "MeshEntryConflict"},
        description="""
            Records the node's public `host:port`. The same endpoint again (the agent's
            periodic refresh) writes nothing; a new one bumps the project's mesh version and
            sends `peer_endpoint_changed` to the other nodes, in one transaction.

            Problem codes: 401 `nsk_revoked`; 403 `nsk_node_mismatch`; 400 `invalid_body`,
            `invalid_endpoint`; 409 `node_deregistered`, `peer_entry_conflict`; 501
            `node_endpoint_not_provisioned`, `mesh_not_provisioned`.
            """,
    ),
    Operation(
        "POST",
        "/v1/nodes/{node_id}/deregister",
        function="DeregisterNodeFunction",
        operation_id="deregisterNode",
        tag="nodes (agent)",
        summary="Node deregistration",
        auth="node",
        answer=Answer(200, "The node is deregistered.", DeregisterResponse),
        errors={409: "NodeDeregistered"},
        description="""
            Marks the node deregistered, revokes its NSK and releases its hostname, atomically.
            The node leaves every cohort; afterwards its NSK answers 401 `nsk_revoked`. No body.

            Problem codes: 401 `nsk_revoked`; 403 `nsk_node_mismatch`; 409
            `node_deregistered` (deregistered concurrently); 501
            `node_deregistration_not_provisioned`.
            """,
    ),
    Operation(
        "GET",
        "/v1/nodes/{node_id}/events",
        function="NodeEventsFunction",
        operation_id="nodeEvents",
        tag="nodes (agent)",
        summary="The node's signed event stream (SSE)",
        auth="node",
        answer=Answer(
            200,
            "SSE frames of signed event envelopes, ending with a `retry:` hint.",
            EventStream,
            media_type="text/event-stream",
            headers={
                "Cache-Control": {
                    "description": "Always `no-cache`.",
                    "schema": {"type": "string", "example": "no-cache"},
                }
            },
        ),
        errors={},
        parameters=(
            Parameter(
                "Last-Event-ID",
                "header",
                "The id of the last event the client processed; the answer starts after it.",
            ),
            Parameter(
                "last_event_id",
                "query",
                "Same as the `Last-Event-ID` header, which wins when both are sent.",
            ),
        ),
        description="""
            Server-Sent Events for the node: `action_request` (one per invocation the workflow
            releases to the node), `action_cancel` (an operator cancelled an open
            invocation), `signing_key_rotated` (a deployment admin rotated the signing key;
            signed with the previous key, payload `{public_key, valid_from,
            transition_expires, current, previous}`), and the events of the node's project
            feed that concern it (SPEC §18), merged in id order.

            **Signing keys.** Each event is signed with the key valid at its id: up to and
            including a rotation's `signing_key_rotated`, the previous key (while the
            transition lasts); after it, the new one.

            **Which events.** With `Last-Event-ID` (header, or the `last_event_id` query
            parameter when the header is absent): the node's events after that id. Without
            it: the events the node has not been sent yet (a per-node delivery cursor, advanced,
            never backwards, to the last event of every non-empty answer, with or without
            `Last-Event-ID`). At most 100 events per answer, oldest first. Events are kept
            48 h.

            **Long poll.** When there is no event yet, the request is held (polling every
            0.25 s) up to `EventStreamHoldSeconds` (20 s by default; 2 s in local mode) for a
            first one. The body ends with `retry: 1000`; the client reconnects.

            **Frames.** Each message is `id: <event_id>`, `event: <event_type>`,
            `data: <EventEnvelope JSON>`. Envelopes are stored unsigned and signed at delivery:
            every answer carries a fresh `issued_at` and `nonce`, so a replay is never a reused
            nonce and a node that was offline still gets events its verifier accepts.

            **Checks, in this order**: 413 `request_body_too_large`; 501
            `node_events_not_provisioned` (no table); NSK: 401 `nsk_revoked` (missing,
            malformed or revoked key, or deregistered node), 403 `nsk_node_mismatch` (another
            node's key); when there are events to sign: 501 `signing_key_not_provisioned`, 503
            `dependency_unavailable` (secret store).
            """,
    ),
    Operation(
        "POST",
        "/v1/signing-keys:rotate",
        function="RotateSigningKeyFunction",
        operation_id="rotateSigningKey",
        tag="tenancy",
        summary="Rotate the deployment's event-signing key",
        auth="operator",
        answer=Answer(200, "The keys after the rotation.", SigningKeyView),
        errors={403: "RebacDenied", 409: "SigningKeyRotationConflict"},
        description="""
            A new Ed25519 key signs node events from now on. The previous key stays listed
            (`previous`, in every node's `state.signing_keys`) until `transition_expires`
            (`SigningKeyTransitionSeconds`, a day by default) and signs every event up to and
            including the `signing_key_rotated` event this writes once to the deployment feed,
            so each node learns the new key from an envelope it can verify. Other function
            containers pick the new key up within the secret cache's age (5 minutes); nodes
            accept either key during the transition. Also `POST /v1/signing-keys/rotate`.

            **Checks, in this order**: 401 (operator token); 501
            `signing_key_rotation_not_provisioned` (no table); 403 `rebac_denied` unless the
            caller is named in the deployment's `DeploymentAdmins` (`relation_path`
            `["user:<subject>", "deployment#admin"]`); 409 `signing_key_rotation_in_progress`
            while the previous rotation's transition lasts (rotating again would leave nodes
            that have not read it yet unable to verify either key); 409
            `signing_key_rotation_conflict` when another rotation stored its key first (the
            secret store refuses a second version of the same rotation number); 503
            `dependency_unavailable` (secret store).
            """,
    ),
    Operation(
        "POST",
        "/v1/signing-keys/rotate",
        function="RotateSigningKeyFunction",
        operation_id="rotateSigningKeySlashSpelling",
        tag="tenancy",
        summary="Rotate the signing key (slash spelling of signing-keys:rotate)",
        auth="operator",
        answer=Answer(200, "The keys after the rotation.", SigningKeyView),
        errors={403: "RebacDenied", 409: "SigningKeyRotationConflict"},
        description="""
            The same operation as `POST /v1/signing-keys:rotate` (same checks: 501
            `signing_key_rotation_not_provisioned`, 403 `rebac_denied`, 409
            `signing_key_rotation_in_progress`, `signing_key_rotation_conflict`), for clients
            that cannot send a colon in a path.
            """,
    ),
    Operation(
        "GET",
        "/v1/signing-keys",
        function="GetSigningKeysFunction",
        operation_id="getSigningKeys",
        tag="tenancy",
        summary="The deployment's public event-signing keys",
        auth="operator",
        answer=Answer(200, "The public keys.", SigningKeyView),
        errors={},
        description="""
            The public halves of the event-signing keys, as nodes see them in
            `state.signing_keys`, plus when the current one started signing. Any
            authenticated operator may read them (they are public keys). 501
            `signing_keys_not_provisioned` without a table, 501 `signing_key_not_provisioned`
            without the secret.
            """,
    ),
    Operation(
        "GET",
        "/v1/nodes/{node_id}/secrets/{key}",
        function="FetchNodeSecretFunction",
        operation_id="fetchNodeSecret",
        tag="nodes (agent)",
        summary="Fetch a granted secret, encrypted under the node's key",
        auth="node",
        answer=Answer(200, "The value, AES-256-GCM under the node's NSK.", NodeSecret),
        errors={
            400: "InvalidParameter",
            403: "SecretAccessDenied",
            404: "SecretNotFound",
            409: "NodeKeyNotSealed",
        },
        parameters=(SECRET_KEY_PARAMETER,),
        description="""
            The secret's value encrypted for the calling node: AES-256-GCM under the
            base64-decoded 32-byte `node_secret_key`, a fresh random 12-byte nonce, no AAD,
            standard base64 (`ciphertext` carries the GCM tag at its end). Costs two KMS
            requests (the data key and the node's sealed key).

            **Checks, in this order**: 501 `node_secrets_not_provisioned`; NSK: 401
            `nsk_revoked`, 403 `nsk_node_mismatch`; 400 `invalid_parameter` (the name); 404
            `secret_not_found`; 403 `secret_access_denied`; 409 `node_key_not_sealed` (the node
            registered before its key was kept sealed: re-register it); 501
            `secrets_not_provisioned` (no KMS key); 503 `datastore_unavailable`,
            `dependency_unavailable` (KMS).
            """,
    ),
    Operation(
        "GET",
        "/v1/nodes/{node_id}/state",
        function="NodeStateFunction",
        operation_id="nodeState",
        tag="nodes (agent)",
        summary="The node's state for reconciliation",
        auth="node",
        answer=Answer(200, "The node's state.", NodeState),
        errors={},
        description="""
            The node's open invocations (`executions[]`: targets in `pending`, `ack` or
            `started` that were released to the node, by Execution id; targets that rate
            control holds back appear once released) and the event-signing public key
            (`signing_keys.current`), and `secret_refs`: `{key, version}` of the project's
            secrets granted to the node, by name. `peers`, `policies` and `data` are always
            empty in this build; `metadata` is the node's registration metadata.

            **Checks, in this order**: 413 `request_body_too_large`; 501
            `node_state_not_provisioned` (no table); NSK: 401 `nsk_revoked`, 403
            `nsk_node_mismatch`; 501 `signing_key_not_provisioned`, 503
            `dependency_unavailable` (secret store).
            """,
    ),
    Operation(
        "POST",
        "/v1/nodes/{node_id}/executions/{execution_id}",
        function="ExecutionCallbackFunction",
        operation_id="executionCallback",
        tag="nodes (agent)",
        summary="Unified per-node callback",
        auth="callback",
        request=CallbackIn,
        answer=Answer(200, "The report was accepted; `status` is the target's new state.", CallbackResponse),
        errors={
            400: "InvalidBody",
            404: "ExecutionNotFound",
            409: "TransitionRefused",
            413: "CallbackOutputTooLarge",
            422: "InvalidOutputReference",
        },
        description="""
            The node (or a holder of the invocation's callback token) reports a state of its
            invocation: the `callback_url` of the `action_request` event. States only move
            forward (`pending → ack → started → succeeded | failed | cancelled | timeout`);
            skipping is allowed, going back or repeating a state is not, and nothing leaves a
            terminal state. Every accepted report is one conditional write; of concurrent
            reports for one target exactly one wins. Unknown body fields are ignored.

            **Output.** `output.inline`: base64, at most 16 KiB decoded, stored with the
            invocation. Larger outputs: declare `declared_output_bytes` (over 16 KiB) on the
            callback that moves the target out of `pending` (to a non-terminal state); that
            answer alone carries `output_upload_url` (a presigned S3 PUT whose signed
            `Content-Length` is the declared size, valid 300 s) and `output_object_key`
            (`outputs/{execution_id}/{node_id}`). Upload there, then report the terminal state
            with `output: {object_key, sha256}`; the control plane checks the key is the one
            issued, the object exists, and its SHA-256 matches.

            **Checks, in this order**:
            1. 413 `request_body_too_large` (over 1 MiB).
            2. 501 `execution_callback_not_provisioned` (no table).
            3. Credential: a bearer starting with `plx_cb_` is a callback token, which must be
               this server's, for this `(execution, node)` and not expired → else 401
               `invalid_callback_token` (501 `callback_key_not_provisioned` or 503
               `dependency_unavailable` if its key cannot be read); any other bearer is the
               NSK → 401 `nsk_revoked` (missing, malformed, revoked, deregistered node), 403
               `nsk_node_mismatch` (another node's key).
            4. Body: `CallbackRequest` → 400 `invalid_body` (also for `status: pending`, for
               both or neither of `output.inline`/`output.object_key`, and for `object_key`
               without `sha256`).
            5. `output.inline`: over 16 KiB → 413 `inline_output_too_large`; not base64 → 400
               `invalid_body`.
            6. `output.object_key`: 501 `execution_callback_not_provisioned` (no output
               bucket); not the issued key, no object uploaded, or another SHA-256 → 422
               `invalid_output_reference`; 503 `dependency_unavailable` (object store).
            7. Transition: 404 `execution_not_found` (no invocation for this `(node,
               execution)`); 409 `execution_already_terminal` (the target is terminal; the
               refused report is recorded in the audit trail with `detail.reason:
               late_report`); 409 `invalid_state_transition` (backward or repeated state).
            8. Upload URL (when due): 501 `execution_callback_not_provisioned` without an
               output bucket (the transition is already recorded).
            """,
    ),
    Operation(
        "POST",
        "/v1/nodes/{node_id}/executions/{execution_id}/ack",
        function="AckExecutionFunction",
        operation_id="ackExecution",
        tag="nodes (agent)",
        summary="Agent ack/nack of an invocation",
        auth="callback",
        request=AckIn,
        answer=Answer(
            200, "The ack was recorded; `status` is the target's new state (`ack` or `failed`).", ReportResponse
        ),
        errors={400: "InvalidBody", 404: "ExecutionNotFound", 409: "TransitionRefused"},
        description="""
            The agent accepts or rejects an invocation: `accepted` moves the target to `ack`;
            `rejected` moves it to `failed` with `reason` as the target's `error` (`rejected by
            node` when empty). The audit event's `detail` is `{ack, reason?}`. Unknown body
            fields are ignored.

            **Checks, in this order**: 413 `request_body_too_large`; 501
            `execution_callback_not_provisioned` (no table); credential as on the unified
            callback (401 `invalid_callback_token` / `nsk_revoked`, 403 `nsk_node_mismatch`;
            501 `callback_key_not_provisioned`); 400 `invalid_body` (body not `AckRequest`, or
            a body `execution_id` that differs from the path); 404 `execution_not_found`; 409
            `execution_already_terminal` (recorded as `late_report`), `invalid_state_transition`
            (e.g. an ack after `started`).
            """,
    ),
    Operation(
        "POST",
        "/v1/nodes/{node_id}/executions/{execution_id}/result",
        function="ExecutionResultFunction",
        operation_id="executionResult",
        tag="nodes (agent)",
        summary="Agent result of an invocation",
        auth="callback",
        request=ResultIn,
        answer=Answer(200, "The result was recorded; `status` is the target's new (terminal) state.", ReportResponse),
        errors={400: "InvalidBody", 404: "ExecutionNotFound", 409: "TransitionRefused", 413: "ResultOutputTooLarge"},
        description="""
            The agent's final report. `status` maps to the target state: `success` →
            `succeeded`; `failure`, `failed`, `error` → `failed` (the target's `error` is the
            last 512 characters of `stderr`, or `reported <status>`); `timeout` → `timeout`;
            `cancelled` → `cancelled`. `exit_code` is kept on the target; `duration`,
            `finished_at` and the reported status go to the audit event's `detail`;
            `triggered_by` is accepted and ignored. Unknown body fields are ignored.

            **Output.** `stdout` and `stderr` are at most 64 KiB (UTF-8 bytes) each. Stored as
            the JSON document `{"stdout", "stderr"}`: inline with the invocation when together
            at most 16 KiB, otherwise put in the object store by the control plane itself
            (`outputs/{execution_id}/{node_id}.json`). Read it with
            `GET /v1/projects/{project_id}/executions/{execution_id}/targets/{node_id}/output`.

            **Checks, in this order**: 413 `request_body_too_large`; 501
            `execution_callback_not_provisioned` (no table); credential as on the unified
            callback (401 `invalid_callback_token` / `nsk_revoked`, 403 `nsk_node_mismatch`;
            501 `callback_key_not_provisioned`); 400 `invalid_body` (body not `ResultRequest`,
            or a body `execution_id` that differs from the path); 413
            `result_output_too_large` (`stdout` or `stderr` over 64 KiB); for an output over
            16 KiB: 501 `execution_callback_not_provisioned` (no output bucket), 503
            `dependency_unavailable` (object store); 404 `execution_not_found`; 409
            `execution_already_terminal` (e.g. a late result after cancel, recorded in the
            audit trail as `late_report`), `invalid_state_transition`.
            """,
    ),
    Operation(
        "POST",
        "/v1/artifacts/plexd/{version}/{os}/{arch}",
        function="PublishArtifactFunction",
        operation_id="publishArtifact",
        tag="artifacts",
        summary="Publish a plexd release binary (deployment admins)",
        auth="operator",
        request=PublishArtifactRequest,
        answer=Answer(201, "The pending publication and its presigned upload URL.", ArtifactPublished),
        errors={400: "InvalidBodyOrParameter", 403: "RebacDenied", 409: "ArtifactExists"},
        parameters=ARTIFACT_PARAMETERS,
        description="""
            Declares the binary's SHA-256 and size and answers a presigned S3 PUT
            (`upload_url`, valid 15 minutes, SigV4 with the Content-Length signed: exactly
            `size` bytes) to upload it with; the bytes never pass through the API. The
            publication is `pending` until the upload lands: then the bucket's
            `ObjectCreated` event hashes it and marks it `verified` (nodes may download it)
            or `rejected` (its SHA-256 or size differs; the bytes are deleted). Poll
            `GET /v1/artifacts/plexd` for the outcome. A pending or rejected publication may
            be declared again (a fresh URL; an upload to an older declaration is deleted); a
            verified one is final. Costs one conditional `PutItem`; the URL is signed
            without a request to S3.

            **Checks, in this order**: 401 (operator token); 501 `artifacts_not_provisioned`
            (no table); 403 `rebac_denied` unless the caller is named in the deployment's
            `DeploymentAdmins` (`relation_path` `["user:<subject>", "deployment#admin"]`),
            whatever the body; 400 `invalid_parameter` (version, os or arch); 400
            `invalid_body` (`sha256`: 64 lower-case hex digits, optionally `sha256:`-prefixed;
            `size`: an integer from 1 to 536870912); 501 `artifacts_not_provisioned` (no
            artifact bucket); 409 `artifact_exists` (already verified); 503
            `datastore_unavailable`.
            """,
    ),
    Operation(
        "GET",
        "/v1/artifacts/plexd",
        function="ListArtifactsFunction",
        operation_id="listArtifacts",
        tag="artifacts",
        summary="List the plexd releases and their checksums",
        auth="operator",
        answer=Answer(200, "One page of publications; `next_cursor` is absent on the last page.", ArtifactList),
        errors={400: "InvalidPaging", 403: "CursorBindingMismatch"},
        parameters=("Limit", "Cursor"),
        description="""
            Every publication of plexd, ordered by version string, then os, then arch
            (string order: `1.10.0` sorts before `1.9.0`), with its SHA-256, size and status
            (`pending`, `verified`, `rejected` with `rejected_reason`). Any authenticated
            operator may list: versions and checksums are what the nodes run, not secrets.

            Problem codes: 400 `invalid_limit`, `invalid_cursor`; 403
            `cursor_binding_mismatch`; 501 `artifacts_not_provisioned`,
            `cursor_key_not_provisioned`; 503 `datastore_unavailable`.
            """,
    ),
    Operation(
        "GET",
        "/v1/artifacts/plexd/{version}/{os}/{arch}",
        function="DownloadArtifactFunction",
        operation_id="downloadArtifact",
        tag="nodes (agent)",
        summary="Download a verified plexd release (302 to a presigned GET)",
        auth="node",
        answer=Answer(
            302,
            "Redirect to the binary: a presigned S3 GET of the verified object version, valid 5 minutes.",
            headers={
                "Location": {
                    "description": "The presigned GET URL (another host: clients drop `Authorization`).",
                    "schema": {"type": "string", "format": "uri"},
                },
                "Cache-Control": {"description": "Always `no-store`.", "schema": {"type": "string"}},
            },
        ),
        errors={404: "ArtifactNotFound"},
        parameters=ARTIFACT_PARAMETERS,
        description="""
            What plexd's `service.upgrade` fetches. The binary (tens of MiB) is not in the
            answer, which Lambda caps at 6 MB: the answer is a 302 whose `Location` is a
            presigned GET of the verified object version in the artifact bucket; the agent
            follows it and checks the SHA-256 itself. Any registered node may download any
            verified release, whatever its project.

            The route names no node: the node is found from its key (the NSK index, then its
            credential, two reads), so 403 `nsk_node_mismatch` does not arise here.

            **Checks, in this order**: 501 `artifacts_not_provisioned` (no table); NSK: 401
            `nsk_revoked` (no bearer, an operator token, an unknown or revoked key); 404
            `artifact_not_found` (no such publication, or not verified: pending or rejected;
            also any malformed version, os or arch); 501 `artifacts_not_provisioned` (no
            artifact bucket); 503 `datastore_unavailable`.
            """,
    ),
)
