"""Project secrets: one item per secret holding its current version, sealed (never the value)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from orchestrator.clock import parse_rfc3339, rfc3339
from orchestrator.domain.secrets import SealedSecret, SecretGrants, SecretMeta
from orchestrator.errors import SecretNotFound, SecretVersionConflict
from orchestrator.store import keys
from orchestrator.store.table import Item, Table, TransactionCanceled

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

META_ATTRIBUTES = ("project_id", "key", "version", "grants", "updated_at", "updated_by")


class SecretStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, project_id: str, key: str) -> SealedSecret | None:
        """The current version, sealed (strongly consistent: a writer reads what it replaces)."""
        item = self.table.get(keys.project_secret(project_id, key), consistent=True)
        return sealed_from_item(item) if item else None

    def put_version(
        self, secret: SealedSecret, *, replaces: int | None, with_ops: Sequence[TransactWriteItemTypeDef] = ()
    ) -> None:
        """Write ``secret`` as the next version, with ``with_ops`` (its event) in the same
        transaction: only if the secret is absent (``replaces`` None) or still at version
        ``replaces``; otherwise 409 ``secret_version_conflict`` (another writer took that
        version; the caller may read again and retry) and nothing written."""
        if replaces is None:
            condition, values = "attribute_not_exists(PK)", None
        else:
            condition, values = "version = :replaces", {":replaces": replaces}
        try:
            self.table.transact([self.table.put_op(_item(secret), condition=condition, values=values), *with_ops])
        except TransactionCanceled as exc:
            if exc.reasons[0] == "ConditionalCheckFailed":
                raise SecretVersionConflict(f"Secret {secret.meta.key!r} was changed concurrently.") from exc
            raise

    def delete(
        self, project_id: str, key: str, *, version: int, with_ops: Sequence[TransactWriteItemTypeDef] = ()
    ) -> None:
        """Delete the secret if it is still at ``version``, with ``with_ops`` (its event) in
        the same transaction (404 when it is gone, 409 when another writer changed it
        meanwhile; nothing written either way)."""
        secret_key = keys.project_secret(project_id, key)
        try:
            self.table.transact(
                [self.table.delete_op(secret_key, condition="version = :v", values={":v": version}), *with_ops]
            )
        except TransactionCanceled as exc:
            if exc.reasons[0] != "ConditionalCheckFailed":
                raise
            if self.table.get(secret_key, consistent=True) is None:
                raise SecretNotFound(f"Secret {key!r} does not exist.") from exc
            raise SecretVersionConflict(f"Secret {key!r} was changed concurrently.") from exc

    def list_page(
        self, project_id: str, *, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[SecretMeta], dict[str, Any] | None]:
        """One page of the project's secrets, by name."""
        items, last = self.table.query_page(
            index=None,
            key_condition="PK = :pk AND begins_with(SK, :prefix)",
            values={":pk": keys.project_partition(project_id), ":prefix": keys.SECRET_PREFIX},
            limit=limit,
            start_key=start_key,
        )
        return [meta_from_item(i) for i in items], last

    def iter_metadata(self, project_id: str) -> Iterator[SecretMeta]:
        """Every secret of the project, without its sealed parts (one Query, projected)."""
        for item in self.table.query_all(
            index=None,
            key_condition="PK = :pk AND begins_with(SK, :prefix)",
            values={":pk": keys.project_partition(project_id), ":prefix": keys.SECRET_PREFIX},
            attributes=META_ATTRIBUTES,
        ):
            yield meta_from_item(item)


def _item(secret: SealedSecret) -> Item:
    meta = secret.meta
    return {
        **keys.project_secret(meta.project_id, meta.key),
        "type": "secret",
        "project_id": meta.project_id,
        "key": meta.key,
        "version": meta.version,
        "grants": meta.grants.model_dump(mode="json", exclude_none=True),
        "updated_at": rfc3339(meta.updated_at),
        "updated_by": meta.updated_by,
        "ciphertext": secret.ciphertext,
        "nonce": secret.nonce,
        "wrapped_data_key": secret.wrapped_data_key,
    }


def meta_from_item(item: Item) -> SecretMeta:
    return SecretMeta(
        project_id=item["project_id"],
        key=item["key"],
        version=int(item["version"]),
        grants=SecretGrants.model_validate(item.get("grants", {})),
        updated_at=parse_rfc3339(item["updated_at"]),
        updated_by=item.get("updated_by", ""),
    )


def sealed_from_item(item: Item) -> SealedSecret:
    return SealedSecret(
        meta=meta_from_item(item),
        ciphertext=bytes(item["ciphertext"]),
        nonce=bytes(item["nonce"]),
        wrapped_data_key=bytes(item["wrapped_data_key"]),
    )
