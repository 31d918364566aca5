"""Project secrets (SPEC §18): operators write and grant them, granted nodes fetch them.

A write seals the value under a fresh data key per version (KMS ``GenerateDataKey``); a
node's fetch unwraps that data key and the node's sealed NSK (two KMS ``Decrypt``) and
answers the value encrypted under the NSK. Each change is one ``node_secrets_updated`` event
in the project feed, for the nodes granted before or after it; the event names the secret
and its version, never the value (docs/node-state-plane.md §5).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator import kms
from orchestrator.domain.credentials import NodeCredential
from orchestrator.domain.feed import FeedEvent
from orchestrator.domain.models import Permission
from orchestrator.domain.secrets import (
    SECRETS_UPDATED,
    SealedSecret,
    SecretGrants,
    SecretMeta,
    change_audience,
    data_key_context,
    for_node,
    nsk_context,
    open_sealed,
    seal,
)
from orchestrator.errors import NodeKeyNotSealed, SecretAccessDenied, SecretNotFound, SecretVersionConflict
from orchestrator.services.access import authorize_project
from orchestrator.services.context import Context
from orchestrator.store.feeds import project_feed

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

WRITE_ATTEMPTS = 8  # concurrent writers of one secret each get their own version


@dataclass(frozen=True)
class NodeSecret:
    key: str
    ciphertext: str
    nonce: str
    version: int


def put_secret(
    ctx: Context, subject: str, project_id: str, key: str, *, value: bytes, grants: SecretGrants
) -> tuple[SecretMeta, bool]:
    """Create or replace the secret's value and grants as its next version (admin); returns it
    and whether it was created. Concurrent writers never share a version: each write is
    conditional on the version it replaces, and a writer that lost reads again (its data key
    is minted for the version it finally writes)."""
    authorize_project(ctx.tenancy, subject, project_id, Permission.ADMIN)
    for _ in range(WRITE_ATTEMPTS):
        current = ctx.secrets.get(project_id, key)
        version = current.meta.version + 1 if current else 1
        meta = SecretMeta(
            project_id=project_id,
            key=key,
            version=version,
            grants=grants,
            updated_at=ctx.clock.now(),
            updated_by=f"user:{subject}",
        )
        data_key = kms.generate_data_key(data_key_context(project_id, key, version), operation="secrets")
        nonce, ciphertext = seal(data_key.plaintext, value)
        sealed = SealedSecret(meta=meta, ciphertext=ciphertext, nonce=nonce, wrapped_data_key=data_key.wrapped)
        announced = _announcement(ctx, meta, current.meta.grants if current else None, deleted=False)
        try:
            ctx.secrets.put_version(sealed, replaces=current.meta.version if current else None, with_ops=[announced])
        except SecretVersionConflict:
            continue
        return meta, current is None
    raise SecretVersionConflict(f"Secret {key!r} is being changed by other writers; try again.")


def delete_secret(ctx: Context, subject: str, project_id: str, key: str) -> None:
    """Delete the secret (admin); 404 ``secret_not_found`` when there is none."""
    authorize_project(ctx.tenancy, subject, project_id, Permission.ADMIN)
    for _ in range(WRITE_ATTEMPTS):
        current = ctx.secrets.get(project_id, key)
        if current is None:
            raise SecretNotFound(f"Secret {key!r} does not exist.")
        announced = _announcement(ctx, current.meta, None, deleted=True)
        try:
            ctx.secrets.delete(project_id, key, version=current.meta.version, with_ops=[announced])
        except SecretVersionConflict:
            continue
        return
    raise SecretVersionConflict(f"Secret {key!r} is being changed by other writers; try again.")


def list_secrets(
    ctx: Context, subject: str, project_id: str, *, limit: int, start_key: dict[str, Any] | None
) -> tuple[list[SecretMeta], dict[str, Any] | None]:
    authorize_project(ctx.tenancy, subject, project_id, Permission.READ)
    return ctx.secrets.list_page(project_id, limit=limit, start_key=start_key)


def fetch_for_node(ctx: Context, caller: NodeCredential, key: str) -> NodeSecret:
    """The secret encrypted under the calling node's NSK: 404 ``secret_not_found``, 403
    ``secret_access_denied`` when not granted to it, 409 ``node_key_not_sealed`` for a node
    registered before NSKs were kept sealed."""
    secret = ctx.secrets.get(caller.project_id, key) if caller.project_id else None
    if secret is None:
        raise SecretNotFound(f"Secret {key!r} does not exist.")
    if not secret.meta.grants.allows(caller.node_id, caller.labels):
        raise SecretAccessDenied(f"Secret {key!r} is not granted to this node.")
    sealed_nsk = ctx.nodes.get_sealed_nsk(caller.node_id)
    if sealed_nsk is None:
        raise NodeKeyNotSealed("This node registered before secrets could be wrapped for it; re-register it.")
    meta = secret.meta
    data_key = kms.decrypt(
        secret.wrapped_data_key, data_key_context(meta.project_id, meta.key, meta.version), operation="secrets"
    )
    nsk = kms.decrypt(sealed_nsk, nsk_context(caller.node_id), operation="secrets")
    ciphertext, nonce = for_node(nsk, open_sealed(data_key, secret.nonce, secret.ciphertext))
    return NodeSecret(key=meta.key, ciphertext=ciphertext, nonce=nonce, version=meta.version)


def granted_refs(ctx: Context, project_id: str | None, node_id: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """``{key, version}`` of every secret of the node's project granted to it, by name (one
    Query of the project's secrets, projected to their metadata)."""
    if not project_id:
        return []
    return [
        {"key": s.key, "version": s.version}
        for s in ctx.secrets.iter_metadata(project_id)
        if s.grants.allows(node_id, labels)
    ]


def seal_node_key(node_id: str, nsk_b64: str) -> bytes:
    """The NSK sealed under KMS, bound to its node: kept only to wrap secrets for it."""
    return kms.encrypt(base64.b64decode(nsk_b64), nsk_context(node_id), operation="node_registration")


def _announcement(
    ctx: Context, meta: SecretMeta, before: SecretGrants | None, *, deleted: bool
) -> TransactWriteItemTypeDef:
    """One ``node_secrets_updated`` in the project feed, for the nodes granted before or
    after, as an operation of the change's own transaction (no change without its event).
    Each recipient's ``secret_refs`` (the agent replaces its index with it) is filled in at
    delivery (``services.node_feed``)."""
    event = FeedEvent.new(
        ctx.ids.new_id(),
        SECRETS_UPDATED,
        ctx.clock.now(),
        {"key": meta.key, "version": meta.version, "deleted": deleted},
        audience=change_audience(before, meta.grants),
    )
    return ctx.feeds.append_op(project_feed(meta.project_id), event, ctx.clock.now())
