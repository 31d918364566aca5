"""Node report bodies (SPEC §5): the unified callback and the agent's ack/result pair."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StrictInt, model_validator

from orchestrator.domain.executions import TargetStatus
from orchestrator.domain.transitions import ACK_STATUS, RESULT_STATUS
from orchestrator.errors import InvalidBody
from orchestrator.http.schemas import NodeBody
from orchestrator.services.callbacks import Report, decode_inline

Text = Annotated[str, Field(max_length=4096)]
# An exit code as the agent's Go int holds it (64 bits).
ExitCode = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
SAME_AS_PATH = "Optional; when given it must equal the path's `execution_id` (else 400 `invalid_body`)."
STREAM_BOUND = "At most 64 KiB (UTF-8 bytes); else 413 `result_output_too_large`."


class OutputIn(NodeBody):
    """Exactly one of `inline` and `object_key`; `sha256` is required with `object_key`
    (else 400 `invalid_body`)."""

    # "Exactly one" is said in words: a `oneOf` would refuse the `null` that `output` may be.
    model_config = ConfigDict(title="CallbackOutput")

    inline: str | None = Field(
        None,
        description="The output, base64; at most 16 KiB decoded (else 413 `inline_output_too_large`).",
        json_schema_extra={"format": "byte"},
    )
    object_key: Annotated[str, Field(max_length=1024)] | None = Field(
        None, description="The `output_object_key` issued for this target, after uploading there."
    )
    sha256: Annotated[str, Field(pattern=r"^(sha256:)?[0-9a-fA-F]{64}$")] | None = Field(
        None, description="SHA-256 of the uploaded object (hex, optionally prefixed `sha256:`)."
    )

    @model_validator(mode="after")
    def _one_tier(self) -> OutputIn:
        if (self.inline is None) == (self.object_key is None):
            raise ValueError("give exactly one of output.inline or output.object_key")
        if self.object_key is not None and self.sha256 is None:
            raise ValueError("output.sha256 is required with output.object_key")
        return self


class CallbackIn(NodeBody):
    """Unified callback body (unknown fields are ignored)."""

    model_config = ConfigDict(title="CallbackRequest")

    status: Literal["ack", "started", "succeeded", "failed", "cancelled", "timeout"] = Field(
        description="The invocation's new state (SPEC §8); it may skip forward, never go back or repeat."
        " `pending` is not reportable."
    )
    exit_code: ExitCode | None = None
    error: Text | None = Field(None, description="Kept as the target's `error`.")
    declared_output_bytes: Annotated[StrictInt, Field(ge=0, le=5 * 1024**3)] | None = Field(
        None,
        description="Size of the output to come. Over 16384 on the callback that moves the target out of"
        " `pending` (to a non-terminal state), the answer carries a presigned upload URL.",
    )
    output: OutputIn | None = None

    def to_report(self) -> Report:
        inline = decode_inline(self.output.inline) if self.output and self.output.inline is not None else None
        return Report(
            status=TargetStatus(self.status),
            exit_code=self.exit_code,
            error=self.error,
            inline_output=inline,
            object_key=self.output.object_key if self.output else None,
            sha256=self.output.sha256 if self.output else None,
            declared_output_bytes=self.declared_output_bytes,
        )


class AckIn(NodeBody):
    """The agent's ack or nack (unknown fields are ignored)."""

    model_config = ConfigDict(title="AckRequest")

    execution_id: str | None = Field(None, description=SAME_AS_PATH)
    status: Literal["accepted", "rejected"] = Field(description="`accepted` → `ack`; `rejected` → `failed`.")
    reason: Text = Field("", description="Why the node rejected the invocation (becomes the target's `error`).")

    def to_report(self) -> Report:
        status = ACK_STATUS[self.status]
        rejected = status is TargetStatus.FAILED
        return Report(
            status=status,
            error=(self.reason or "rejected by node") if rejected else None,
            agent_style=True,
            detail={"ack": self.status, **({"reason": self.reason} if self.reason else {})},
        )


class ResultIn(NodeBody):
    """The agent's final result (unknown fields are ignored)."""

    model_config = ConfigDict(title="ResultRequest")

    execution_id: str | None = Field(None, description=SAME_AS_PATH)
    status: Literal["success", "failure", "failed", "error", "timeout", "cancelled"] = Field(
        description="`success` → `succeeded`; `failure`, `failed`, `error` → `failed`; `timeout`; `cancelled`."
    )
    exit_code: ExitCode | None = None
    stdout: str = Field("", description=STREAM_BOUND)
    stderr: str = Field("", description=STREAM_BOUND)
    duration: Annotated[str, Field(max_length=64)] | float | None = Field(
        None, description="As the agent reports it: a Go duration (`1.5s`), or a number of seconds."
    )  # "2.34s" (plexd) or seconds
    finished_at: Annotated[str, Field(max_length=64)] | None = None
    triggered_by: dict[str, Any] | None = Field(None, description="Accepted and ignored.")

    def report_fields(self) -> dict[str, Any]:
        duration = f"{self.duration}s" if isinstance(self.duration, int | float) else self.duration
        detail = {
            k: v for k, v in (("duration", duration), ("finished_at", self.finished_at), ("reported", self.status)) if v
        }
        failed = RESULT_STATUS[self.status] is TargetStatus.FAILED
        return {
            "status": RESULT_STATUS[self.status],
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "detail": detail,
            "error": (self.stderr[-512:] or f"reported {self.status}") if failed else None,
        }


def check_execution_id(body_execution_id: str | None, path_execution_id: str) -> None:
    if body_execution_id and body_execution_id != path_execution_id:
        raise InvalidBody("execution_id in the body does not match the path.")
