"""Node reports (SPEC §5, §8, §10): every accepted transition is one conditional write.

The caller is authenticated first (:func:`orchestrator.http.nodes.callback_reporter`): one
strongly consistent read of the node's credential, for an NSK and for a callback token
alike, so a key revoked before a report is refused, and every error about the report is
answered to an authenticated caller only. The move is then one conditional ``UpdateItem``
that moves the target from any state the §8 machine allows to the reported one, carrying
the move's audit event; when the condition fails the target as it is comes back with the
failure and decides the spec's 404 or 409. The table's stream folds the counters and the
audit trail from there (:mod:`orchestrator.services.aggregate`). Nothing is written for a
refused report. (docs/decisions.md, "A report reads its node's credential".)
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, NoReturn

from orchestrator.domain.audit import AuditEvent
from orchestrator.domain.executions import TargetStatus
from orchestrator.domain.transitions import check_transition, sources
from orchestrator.errors import (
    ExecutionNotFound,
    InlineOutputTooLarge,
    InvalidBody,
    InvalidOutputReference,
    OrchestratorError,
    ResultOutputTooLarge,
)
from orchestrator.services import outputs
from orchestrator.services.context import Context
from orchestrator.settings import require
from orchestrator.store.targets import TargetChanged

RESULT_STREAM_CEILING = 64 * 1024
OPERATION = "execution_callback"


@dataclass(frozen=True)
class Report:
    """A node's report, in control-plane terms."""

    status: TargetStatus
    exit_code: int | None = None
    error: str | None = None
    inline_output: bytes | None = None
    object_key: str | None = None
    sha256: str | None = None
    declared_output_bytes: int | None = None
    agent_style: bool = False
    detail: dict[str, Any] | None = None
    stored_output_ref: dict[str, Any] | None = None


LATE_REPORTS_AUDITED = 10  # per target; later ones only raise the target's late_reports count


@dataclass(frozen=True)
class Reporter:
    """Who reports for a (node, execution) target, authenticated: the node by its key, a
    callback token's bearer, or the control plane itself. ``actor`` goes into the audit trail."""

    actor: str


@dataclass(frozen=True)
class Outcome:
    status: TargetStatus
    output_upload_url: str | None = None
    output_object_key: str | None = None


def decode_inline(encoded: str) -> bytes:
    """Base64 inline output, at most 16 KiB decoded (413 ``inline_output_too_large``)."""
    if len(encoded) > 4 * (outputs.INLINE_CEILING_BYTES // 3 + 1) + 4:
        raise InlineOutputTooLarge(f"Inline output is limited to {outputs.INLINE_CEILING_BYTES} bytes.")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBody("output.inline must be base64.") from exc
    if len(data) > outputs.INLINE_CEILING_BYTES:
        raise InlineOutputTooLarge(f"Inline output is limited to {outputs.INLINE_CEILING_BYTES} bytes.")
    return data


def report(ctx: Context, node_id: str, execution_id: str, report: Report, reporter: Reporter) -> Outcome:
    """Apply one report to the (node, execution) target."""
    return _Reporter(ctx, node_id, execution_id, report, reporter).apply()


@dataclass
class _Reporter:
    ctx: Context
    node_id: str
    execution_id: str
    report: Report
    reporter: Reporter

    def apply(self) -> Outcome:
        extra = _output_fields(self.ctx, self.node_id, self.execution_id, self.report)
        new = self.report.status
        declared = self.report.declared_output_bytes or 0
        upload = declared > outputs.INLINE_CEILING_BYTES and not new.is_terminal
        try:
            old = self._move(extra, previous=upload)
        except TargetChanged as changed:
            if changed.target is None:
                raise ExecutionNotFound(
                    f"Node {self.node_id} has no invocation of execution {self.execution_id}."
                ) from changed
            self._refuse(changed.target.status)
        if upload and old is TargetStatus.PENDING:  # the first callback gets the upload URL
            bucket = require(self.ctx.settings.output_bucket, f"{OPERATION}_not_provisioned")
            key = outputs.object_key(self.execution_id, self.node_id)
            return Outcome(new, outputs.presign_put(bucket, key, declared), key)
        return Outcome(new)

    def _move(self, extra: dict[str, Any], *, previous: bool) -> TargetStatus | None:
        new = self.report.status
        return self.ctx.targets.transition_target(
            self.execution_id,
            self.node_id,
            sources(new),
            new,
            audit=_audit(self.ctx, self.node_id, new, self.report.detail, self.reporter.actor),
            error=self.report.error,
            extra=extra,
            previous=previous,
        )

    def _refuse(self, actual: TargetStatus) -> NoReturn:
        """Raise the 409; a late report after the end is counted on the target, and the first
        ``LATE_REPORTS_AUDITED`` of them are recorded in the audit trail (a node retrying
        forever cannot grow it without bound)."""
        if actual.is_terminal:
            late = self.ctx.targets.count_late_report(self.execution_id, self.node_id)
            if late <= LATE_REPORTS_AUDITED:
                detail = {"refused": self.report.status.value, "reason": "late_report", "late_reports": late}
                self.ctx.audit.record(
                    self.execution_id, _audit(self.ctx, self.node_id, actual, detail, self.reporter.actor)
                )
        check_transition(actual, self.report.status)
        raise AssertionError("unreachable: the transition was checked as not allowed")  # pragma: no cover


def _audit(ctx: Context, node_id: str, status: TargetStatus, detail: dict[str, Any] | None, actor: str) -> AuditEvent:
    return AuditEvent.new(ctx.ids.new_id(), ctx.clock.now(), status=status, actor=actor, node_id=node_id, detail=detail)


def _output_fields(ctx: Context, node_id: str, execution_id: str, report: Report) -> dict[str, Any]:
    """Validate and place the output before any state change (bad input writes nothing)."""
    extra: dict[str, Any] = {}
    if (report.declared_output_bytes or 0) > outputs.INLINE_CEILING_BYTES:
        require(ctx.settings.output_bucket, f"{OPERATION}_not_provisioned")  # before, not after, the move
    if report.exit_code is not None:
        extra["exit_code"] = report.exit_code
    if report.stored_output_ref is not None:
        extra["output_ref"] = report.stored_output_ref
        return extra
    if report.inline_output is not None:
        # The bytes travel in their reference: one attribute, and the last report's output wins.
        extra["output_ref"] = {
            "kind": "inline",
            "size": len(report.inline_output),
            "content": report.inline_output,
        }
        return extra
    if report.object_key is not None:
        bucket = require(ctx.settings.output_bucket, f"{OPERATION}_not_provisioned")
        expected = outputs.object_key(execution_id, node_id)
        if report.object_key != expected:
            raise InvalidOutputReference(f"output.object_key must be the key issued for this target ({expected}).")
        stored = outputs.digest(bucket, expected)
        if stored is None:
            raise InvalidOutputReference("No object was uploaded under output.object_key.")
        sha256 = (report.sha256 or "").removeprefix("sha256:").lower()
        if stored[0] != sha256:
            raise InvalidOutputReference("The uploaded object's SHA-256 does not match output.sha256.")
        extra["output_ref"] = {
            "kind": "object_store",
            "bucket": bucket,
            "key": expected,
            "sha256": stored[0],
            "size": stored[1],
        }
    return extra


def report_result(ctx: Context, node_id: str, execution_id: str, body: dict[str, Any], reporter: Reporter) -> Outcome:
    """An agent ``/result`` (status already mapped): stdout/stderr are at most 64 KiB each;
    together over 16 KiB the control plane puts them in the object store itself, under a key
    of this report's own, so a refused (late or illegal) report never replaces the output of
    the one that was accepted, and its object is removed again."""
    stdout, stderr = body.get("stdout") or "", body.get("stderr") or ""
    for name, text in (("stdout", stdout), ("stderr", stderr)):
        if len(text.encode()) > RESULT_STREAM_CEILING:
            raise ResultOutputTooLarge(f"{name} is limited to {RESULT_STREAM_CEILING} bytes.")
    document = json.dumps({"stdout": stdout, "stderr": stderr}, separators=(",", ":")).encode()
    common: dict[str, Any] = {
        "status": body["status"],
        "exit_code": body.get("exit_code"),
        "error": body.get("error"),
        "agent_style": True,
        "detail": body.get("detail"),
    }
    if len(stdout.encode()) + len(stderr.encode()) <= outputs.INLINE_CEILING_BYTES:
        return report(ctx, node_id, execution_id, Report(inline_output=document, **common), reporter)
    bucket = require(ctx.settings.output_bucket, f"{OPERATION}_not_provisioned")
    key = outputs.object_key(execution_id, node_id, f".result-{ctx.ids.new_id()}.json")
    sha256 = outputs.put(bucket, key, document, "application/json")
    stored = {"kind": "object_store", "bucket": bucket, "key": key, "sha256": sha256, "size": len(document)}
    try:
        return report(ctx, node_id, execution_id, Report(stored_output_ref=stored, **common), reporter)
    except OrchestratorError:
        outputs.discard(bucket, key)
        raise
