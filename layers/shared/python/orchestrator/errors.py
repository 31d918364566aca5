"""Domain errors. Each carries its HTTP status and Problem ``code``.

Errors are raised by the domain, the store and the auth layer and turned into
Problem+JSON responses in exactly one place (:mod:`orchestrator.http.problem`).
"""

from __future__ import annotations

from typing import Any, ClassVar


class OrchestratorError(Exception):
    """Base of every error the API answers with a Problem document."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal Server Error"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        self.detail = detail or self.title
        self.extensions: dict[str, Any] = extensions
        super().__init__(self.detail)

    @property
    def problem_code(self) -> str:
        return self.code


# 400 ---------------------------------------------------------------------------
class InvalidBody(OrchestratorError):
    status, code, title = 400, "invalid_body", "Invalid request body"


class InvalidParameter(OrchestratorError):
    status, code, title = 400, "invalid_parameter", "Invalid request parameter"


class InvalidLimit(OrchestratorError):
    status, code, title = 400, "invalid_limit", "Invalid limit"


class IngestBatchMalformed(OrchestratorError):
    """A telemetry batch with a record that is not one: nothing of the batch is kept."""

    status, code, title = 400, "ingest_batch_malformed", "Malformed telemetry batch"


class InvalidCursor(OrchestratorError):
    status, code, title = 400, "invalid_cursor", "Invalid cursor"


class InvalidTarget(OrchestratorError):
    status, code, title = 400, "invalid_target", "Invalid target"


class ActionNotDeclared(OrchestratorError):
    status, code, title = 400, "action_not_declared", "Action not declared by the node"


class InvalidEndpoint(OrchestratorError):
    status, code, title = 400, "invalid_endpoint", "Invalid endpoint"


class MalformedSelector(OrchestratorError):
    status, code, title = 400, "malformed_selector", "Malformed selector"

    def __init__(self, detail: str, *, position: int) -> None:
        super().__init__(detail, position=position)
        self.position = position


# 401 ---------------------------------------------------------------------------
class Unauthenticated(OrchestratorError):
    status, code, title = 401, "unauthenticated", "Unauthenticated"


class EnrollmentTokenInvalid(OrchestratorError):
    status, code, title = 401, "enrollment_token_invalid", "Invalid enrollment token"


class InvalidCallbackToken(OrchestratorError):
    status, code, title = 401, "invalid_callback_token", "Invalid callback token"


class NskRevoked(OrchestratorError):
    status, code, title = 401, "nsk_revoked", "Node credential invalid or revoked"


# 403 ---------------------------------------------------------------------------
class NskNodeMismatch(OrchestratorError):
    status, code, title = 403, "nsk_node_mismatch", "Node credential belongs to another node"


class RebacDenied(OrchestratorError):
    """A ReBAC denial: the operator SDK's ``PermissionDenied``, whose ``reason`` is one of
    ``out_of_scope``, ``insufficient_relation``, ``caveat_violation``; the sentence saying
    which relation was missing is the ``detail``."""

    status, code, title = 403, "rebac_denied", "Permission denied"

    def __init__(self, detail: str, relation_path: list[str]) -> None:
        super().__init__(detail, reason="insufficient_relation", relation_path=relation_path)


class SecretAccessDenied(OrchestratorError):
    status, code, title = 403, "secret_access_denied", "Secret not granted to this node"


class CursorBindingMismatch(OrchestratorError):
    status, code, title = 403, "cursor_binding_mismatch", "Cursor minted for another caller"


# 404 ---------------------------------------------------------------------------
class RouteNotFound(OrchestratorError):
    status, code, title = 404, "route_not_found", "No such route"


class DomainNotFound(OrchestratorError):
    status, code, title = 404, "domain_not_found", "Domain not found"


class ProjectNotFound(OrchestratorError):
    status, code, title = 404, "project_not_found", "Project not found"


class NodeNotFound(OrchestratorError):
    status, code, title = 404, "node_not_found", "Node not found"


class ExecutionNotFound(OrchestratorError):
    status, code, title = 404, "execution_not_found", "Execution not found"


class OutputNotFound(OrchestratorError):
    status, code, title = 404, "output_not_found", "Output not found"


class SecretNotFound(OrchestratorError):
    status, code, title = 404, "secret_not_found", "Secret not found"


class MemberNotFound(OrchestratorError):
    status, code, title = 404, "member_not_found", "Role grant not found"


class PolicyNotFound(OrchestratorError):
    status, code, title = 404, "policy_not_found", "Policy not found"


class NodeDataNotFound(OrchestratorError):
    status, code, title = 404, "node_data_not_found", "Node data entry not found"


class ArtifactNotFound(OrchestratorError):
    status, code, title = 404, "artifact_not_found", "Artifact not found"


# 409 ---------------------------------------------------------------------------
class ArtifactExists(OrchestratorError):
    status, code, title = 409, "artifact_exists", "Artifact already published"


class HostnameAlreadyRegistered(OrchestratorError):
    status, code, title = 409, "hostname_already_registered", "Hostname already registered"


class NodeDeregistered(OrchestratorError):
    status, code, title = 409, "node_deregistered", "Node is deregistered"


class SigningKeyRotationConflict(OrchestratorError):
    status, code, title = 409, "signing_key_rotation_conflict", "Signing key rotated concurrently"


class SigningKeyRotationInProgress(OrchestratorError):
    status, code, title = 409, "signing_key_rotation_in_progress", "Signing key transition in progress"


class NodeKeyNotSealed(OrchestratorError):
    """The node registered before its NSK was kept sealed: nothing can be wrapped for it."""

    status, code, title = 409, "node_key_not_sealed", "Node key not available for secrets"


class SecretVersionConflict(OrchestratorError):
    status, code, title = 409, "secret_version_conflict", "Secret changed concurrently"


class PeerEntryConflict(OrchestratorError):
    status, code, title = 409, "peer_entry_conflict", "Mesh entry changed concurrently"


class ExecutionAlreadyTerminal(OrchestratorError):
    status, code, title = 409, "execution_already_terminal", "Execution already terminal"


class InvalidStateTransition(OrchestratorError):
    status, code, title = 409, "invalid_state_transition", "Invalid state transition"


class PolicyConflict(OrchestratorError):
    status, code, title = 409, "policy_conflict", "Policy changed concurrently"


class NodeDataConflict(OrchestratorError):
    status, code, title = 409, "node_data_conflict", "Node data changed concurrently"


class HookIntegrityViolation(OrchestratorError):
    status, code, title = 409, "hook_integrity_violation", "Hook integrity violation"


class ReportVersionConflict(OrchestratorError):
    """Entries of a report batch whose version is not greater than the stored one (``keys``)."""

    status, code, title = 409, "report_version_conflict", "Report version conflict"

    def __init__(self, detail: str, *, keys: list[str]) -> None:
        super().__init__(detail, keys=keys)


class IdempotencyKeyInProgress(OrchestratorError):
    status, code, title = 409, "idempotency_key_in_progress", "Request with this Idempotency-Key in progress"


# 413 ---------------------------------------------------------------------------
class RequestBodyTooLarge(OrchestratorError):
    status, code, title = 413, "request_body_too_large", "Request body too large"


class IngestBodyTooLarge(OrchestratorError):
    """A telemetry batch past a per-batch cap: compressed bytes, inflated bytes or records."""

    status, code, title = 413, "ingest_body_too_large", "Telemetry batch too large"

    def __init__(self, detail: str, *, dimension: str, limit: int) -> None:
        super().__init__(detail, dimension=dimension, limit=limit)


class InlineOutputTooLarge(OrchestratorError):
    status, code, title = 413, "inline_output_too_large", "Inline output too large"


class ResultOutputTooLarge(OrchestratorError):
    status, code, title = 413, "result_output_too_large", "Result output too large"


class ReportBatchTooLarge(OrchestratorError):
    status, code, title = 413, "report_batch_too_large", "Report batch too large"


class ReportPayloadTooLarge(OrchestratorError):
    status, code, title = 413, "report_payload_too_large", "Report payload too large"


class DriftTooLarge(OrchestratorError):
    status, code, title = 413, "drift_too_large", "Drift report too large"


# 415 ---------------------------------------------------------------------------
class UnsupportedContentEncoding(OrchestratorError):
    status, code, title = 415, "unsupported_content_encoding", "Unsupported content encoding"


# 422 ---------------------------------------------------------------------------
class InvalidOutputReference(OrchestratorError):
    status, code, title = 422, "invalid_output_reference", "Invalid output reference"


class SelectorEmptyCohort(OrchestratorError):
    status, code, title = 422, "selector_empty_cohort", "Empty cohort"


class NodeDataTooLarge(OrchestratorError):
    status, code, title = 422, "node_data_too_large", "Node data too large"


class InvalidParameters(OrchestratorError):
    status, code, title = 422, "invalid_parameters", "Invalid parameters"


class ConfirmationRequired(OrchestratorError):
    status, code, title = 422, "confirmation_required", "Confirmation required"


class IdempotencyKeyReused(OrchestratorError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency-Key reused with another body"


class BuiltinActionInvalid(OrchestratorError):
    status, code, title = 422, "builtin_action_invalid", "Invalid builtin action"


class BuiltinActionDuplicate(OrchestratorError):
    status, code, title = 422, "builtin_action_duplicate", "Duplicate builtin action"


class PublicKeyInvalid(OrchestratorError):
    status, code, title = 422, "public_key_invalid", "Invalid public key"


class HookInvalid(OrchestratorError):
    status, code, title = 422, "hook_invalid", "Invalid hook declaration"


class HookDuplicate(OrchestratorError):
    status, code, title = 422, "hook_duplicate", "Duplicate hook declaration"


# 5xx ---------------------------------------------------------------------------
class NotProvisioned(OrchestratorError):
    """The operation's backing resources are not configured (501)."""

    status, code, title = 501, "not_provisioned", "Operation not provisioned"

    def __init__(self, operation_code: str, detail: str | None = None) -> None:
        super().__init__(detail or "This operation is not provisioned in this deployment.")
        self._operation_code = operation_code

    @property
    def problem_code(self) -> str:
        return self._operation_code


class CapacityExceeded(OrchestratorError):
    status, code, title = 429, "capacity_exceeded", "Capacity exceeded"

    def __init__(self, detail: str, *, dimension: str, limit: int) -> None:
        super().__init__(detail, dimension=dimension, limit=limit)


class PerNodeRateLimited(OrchestratorError):
    """A node past its telemetry byte budget for the minute; ``Retry-After`` says when the
    next minute's budget starts."""

    status, code, title = 429, "per_node_rate_limited", "Per-node rate limit exceeded"

    def __init__(self, detail: str, *, retry_after: int, limit: int) -> None:
        super().__init__(detail, retry_after=retry_after, limit=limit)


class DatastoreUnavailable(OrchestratorError):
    status, code, title = 503, "datastore_unavailable", "Datastore unavailable"


class DispatchAbandoned(OrchestratorError):
    """The admission sweep ended this dispatch's Execution while the dispatch was still
    running (it outlived the sweep's grace): nothing more of it is written."""

    status, code, title = 503, "dispatch_abandoned", "Dispatch abandoned"


class DependencyUnavailable(OrchestratorError):
    status, code, title = 503, "dependency_unavailable", "Dependency unavailable"
