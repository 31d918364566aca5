"""Typed configuration, read once from the environment at cold start.

Resource names are optional on purpose: an operation whose backing resource
is not configured answers 501 with its ``*_not_provisioned`` code instead of
failing at import time (SPEC §13). Use :func:`require` to get a value or that
501.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.errors import NotProvisioned


class Settings(BaseSettings):
    """Environment of every function (the template's ``Globals`` section)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    table_name: str | None = None
    output_bucket: str | None = None
    # Release artifacts (plexd binaries), uploaded and downloaded by presigned URL (SPEC §19).
    artifact_bucket: str | None = None
    state_machine_arn: str | None = None
    event_bus_name: str | None = None

    # Secret store references (Secrets Manager names or ARNs).
    jwt_secret_name: str | None = None
    signing_key_secret_name: str | None = None
    cursor_key_secret_name: str | None = None
    callback_key_secret_name: str | None = None
    mesh_key_secret_name: str | None = None
    # Node telemetry (SPEC §19): the Firehose delivery stream it goes through, and the bucket
    # it lands in (read back by operators).
    telemetry_stream_name: str | None = None
    telemetry_bucket: str | None = None
    # The inflated bytes of telemetry a node may send per minute (429 past it); at least one
    # batch's cap, so that any valid batch passes in a fresh minute.
    telemetry_node_bytes_per_minute: int = Field(default=16 * 1_048_576, ge=8 * 1_048_576)
    # The KMS key (id, ARN or alias) that seals node keys and wraps secrets' data keys.
    secrets_kms_key_id: str | None = None

    # Operator JWT verification. With a JWKS URL, RS256/ES256 tokens from the
    # identity provider are verified; without one, HS256 with the dev key from
    # ``jwt_secret_name`` (local mode).
    jwt_issuer: str = "plexsphere-local"
    jwt_audience: str = "plexsphere"
    jwks_url: str | None = None

    public_base_url: str | None = None
    # Operators (JWT subjects, comma-separated) who administer the deployment itself: they
    # rotate the event-signing key. None by default.
    deployment_admins: str = ""
    # How long the previous signing key stays listed (and signs events up to its rotation).
    signing_key_transition_seconds: int = Field(default=86_400, ge=60)
    default_live_execution_ceiling: int = Field(default=100, ge=1)
    enrollment_token_ttl_seconds: int = Field(default=86_400, ge=60)
    secret_cache_seconds: int = Field(default=300, ge=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # How long GET /v1/nodes/{id}/events waits for a first event before answering
    # (API Gateway's integration timeout is 29 s).
    event_stream_hold_seconds: float = Field(default=20.0, ge=0, le=25)
    # Shards of the event index (GSI5) every node and feed event is filed under, for the
    # event relay (SPEC §20); 0: events are not indexed.
    event_index_shards: int = Field(default=0, ge=0, le=64)
    # Batch writes a large write (a fan-out's events) keeps in flight at once.
    batch_writes_in_flight: int = Field(default=8, ge=1, le=64)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` in tests)."""
    return Settings()


def require(value: str | None, operation_code: str) -> str:
    """Return a configured resource name or raise 501 ``operation_code``."""
    if not value:
        raise NotProvisioned(operation_code)
    return value
