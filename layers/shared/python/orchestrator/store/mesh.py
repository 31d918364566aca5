"""A project's mesh: its version counter, its peers (the mesh address claims), and the peer
snapshot objects in S3 (docs/node-state-plane.md §1)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from orchestrator import aws
from orchestrator.domain.mesh import MeshPeer
from orchestrator.errors import DependencyUnavailable
from orchestrator.store import keys
from orchestrator.store.table import Table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

PEER_ATTRIBUTES = ("node_id", "mesh_ip", "public_key", "endpoint", "key_version")


class MeshStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def version(self, project_id: str) -> int:
        """The project's mesh version (strongly consistent: a change a caller made or heard of
        is never older than what this returns). 0 before any change."""
        item = self.table.get(keys.project(project_id), consistent=True, attributes=("mesh_version",))
        return int((item or {}).get("mesh_version", 0))

    def bump_op(self, project_id: str) -> TransactWriteItemTypeDef:
        """``ADD 1`` to the project's mesh version, as one operation of the change's transaction."""
        return self.table.update_op(
            keys.project(project_id),
            update="ADD mesh_version :one",
            condition="attribute_exists(PK)",
            values={":one": 1},
        )

    def peers(self, project_id: str) -> list[MeshPeer]:
        """Every node holding a mesh address in the project (the active ones: deregistration
        deletes the claim), from one strongly consistent Query of small items, in address order."""
        items = self.table.query_all(
            index=None,
            key_condition="PK = :pk AND begins_with(SK, :claim)",
            values={":pk": keys.project(project_id)["PK"], ":claim": keys.MESH_IP_CLAIM_PREFIX},
            consistent=True,
            attributes=("SK", *PEER_ATTRIBUTES),
        )
        return [
            MeshPeer(
                id=item["node_id"],
                mesh_ip=item.get("mesh_ip") or item["SK"].removeprefix(keys.MESH_IP_CLAIM_PREFIX),
                public_key=item.get("public_key", ""),
                endpoint=item.get("endpoint", ""),
                key_version=int(item.get("key_version", 0)),
            )
            for item in items
        ]


class SnapshotObjects:
    """Peer snapshots as gzipped JSON objects, one per project and mesh version. A version's
    content never changes, so concurrent writers of one version write the same bytes."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def get(self, project_id: str, mesh_version: int) -> list[MeshPeer] | None:
        try:
            body = aws.s3().get_object(Bucket=self.bucket, Key=keys.mesh_snapshot_object(project_id, mesh_version))
            document = json.loads(gzip.decompress(body["Body"].read()))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise DependencyUnavailable("The object store is unavailable.") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable("The object store is unavailable.") from exc
        return [MeshPeer.model_validate(peer) for peer in document["peers"]]

    def put(self, project_id: str, mesh_version: int, peers: Sequence[MeshPeer]) -> None:
        document = {
            "project_id": project_id,
            "mesh_version": mesh_version,
            "peers": [peer.model_dump() for peer in peers],
        }
        data = gzip.compress(json.dumps(document, separators=(",", ":")).encode(), mtime=0)
        try:
            aws.s3().put_object(
                Bucket=self.bucket,
                Key=keys.mesh_snapshot_object(project_id, mesh_version),
                Body=data,
                ContentType="application/json",
                ContentEncoding="gzip",
            )
        except (ClientError, BotoCoreError) as exc:
            raise DependencyUnavailable("The object store is unavailable.") from exc
