"""Node enrollment, identity and lifecycle (SPEC §5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator import secrets
from orchestrator.domain.capabilities import validate_capabilities
from orchestrator.domain.credentials import NodeCredential, enrollment_token_usable, mint_node_secret_key, secret_hash
from orchestrator.domain.labels import labels_from_metadata
from orchestrator.domain.models import Capabilities, Node, NodeStatus, Permission
from orchestrator.errors import (
    CapacityExceeded,
    DatastoreUnavailable,
    DependencyUnavailable,
    EnrollmentTokenInvalid,
    NodeNotFound,
)
from orchestrator.observability import logger
from orchestrator.services import mesh
from orchestrator.services.access import authorize_project
from orchestrator.services.context import Context
from orchestrator.services.secrets import seal_node_key
from orchestrator.store.nodes import MeshAddressTaken

MESH_PREFIX = "10.100"


@dataclass(frozen=True)
class Registration:
    node: Node
    node_secret_key: str
    signing_public_key: str
    peers: list[dict[str, Any]]


MESH_ADDRESSES = 256 * 254  # host parts .1-.254 of each /24 in the /16
MESH_ALLOCATION_ATTEMPTS = 16


def mesh_ip(sequence: int) -> str:
    """Sequential addresses in 10.100.0.0/16, skipping .0 and .255 host parts."""
    third, fourth = divmod(sequence - 1, 254)
    return f"{MESH_PREFIX}.{third % 256}.{fourth + 1}"


def register(
    ctx: Context,
    *,
    token: str,
    hostname: str,
    public_key: str,
    metadata: dict[str, Any],
    capabilities: Capabilities,
) -> Registration:
    """Consume a one-time token and create the node; its NSK is returned here only."""
    token_hash = secret_hash(token)
    now = ctx.clock.now()
    enrollment = ctx.nodes.get_enrollment_token(token_hash)
    if enrollment is None or not enrollment_token_usable(
        used=enrollment.used, expires_epoch=int(enrollment.expires_at.timestamp()), now=now
    ):
        raise EnrollmentTokenInvalid("The enrollment token is invalid, expired or already used.")
    validate_capabilities(capabilities)
    # Read fresh: a node registering right after a rotation must be handed the new key.
    signing_public_key = secrets.signing_public_key_b64(fresh=True)

    node = Node(
        id=ctx.ids.new_id(),
        project_id=enrollment.project_id,
        domain_id=enrollment.domain_id,
        hostname=hostname,
        metadata=metadata,
        labels=labels_from_metadata(metadata),
        capabilities=capabilities,
        status=NodeStatus.ACTIVE,
        mesh_ip=mesh_ip(ctx.nodes.next_mesh_sequence(enrollment.project_id)),
        public_key=public_key,
        registered_at=now,
        updated_at=now,
    )
    nsk = mint_node_secret_key()
    nsk_sealed = seal_node_key(node.id, nsk)
    for _ in range(MESH_ALLOCATION_ATTEMPTS):
        try:
            ctx.nodes.register(
                node,
                nsk_hash=secret_hash(nsk),
                token_hash=token_hash,
                now=now,
                nsk_sealed=nsk_sealed,
                mesh_ops=mesh.joined(ctx, node),
            )
            break
        except MeshAddressTaken:
            # The address is claimed (the sequence wrapped past a live node, or was reset):
            # the next one. The registration wrote nothing, its token is still unused.
            node = node.model_copy(update={"mesh_ip": mesh_ip(ctx.nodes.next_mesh_sequence(node.project_id))})
    else:
        raise CapacityExceeded(
            "No free mesh address was found for the project.", dimension="mesh_addresses", limit=MESH_ADDRESSES
        )
    trust_hooks_on_first_use(ctx, node)
    return Registration(
        node=node, node_secret_key=nsk, signing_public_key=signing_public_key, peers=_peers_after_commit(ctx, node)
    )


def _peers_after_commit(ctx: Context, node: Node) -> list[dict[str, Any]]:
    """The new node's peers for its 201. The node is registered by now and this answer is the
    only one that carries its NSK, so an outage here (the snapshot's S3 object, say) must not
    turn it into an error: the peers are left out and the agent's first ``/state`` brings
    them."""
    try:
        return mesh.peers_for(ctx, node.project_id, node.id, node.key_version)
    except (DependencyUnavailable, DatastoreUnavailable):
        logger.warning("registration answered without peers", node_id=node.id, project_id=node.project_id)
        return []


def update_capabilities(ctx: Context, caller: NodeCredential, capabilities: Capabilities) -> Node:
    validate_capabilities(capabilities)
    node = ctx.nodes.update_capabilities(caller.node_id, capabilities, ctx.clock.now())
    trust_hooks_on_first_use(ctx, node)
    return node


def trust_hooks_on_first_use(ctx: Context, node: Node) -> None:
    """The first checksum ever reported for a hook in a project becomes its baseline."""
    for hook in node.capabilities.hooks:
        ctx.hook_baselines.pin(
            node.project_id, hook.name, hook.checksum, by=f"node:{node.id}", now=ctx.clock.now(), only_if_absent=True
        )


HEARTBEAT_FIELDS = ("status", "uptime", "binary_checksum", "timestamp")


def heartbeat(ctx: Context, caller: NodeCredential, report: dict[str, Any]) -> tuple[bool, bool]:
    """Record liveness; answer whether the node should reconcile or rotate keys."""
    kept = {k: str(report[k])[:256] for k in HEARTBEAT_FIELDS if report.get(k) is not None}
    return ctx.nodes.heartbeat(caller.node_id, ctx.clock.now(), kept)


def deregister(ctx: Context, node: Node, caller: NodeCredential) -> Node:
    """The node leaves every cohort and the mesh and its NSK stops working, in one
    transaction: the node item's hash and the NSK index go, and every later read of the
    credential (each node request, each report, each callback token's use) refuses it; the
    mesh version moves on and the other nodes hear ``peer_removed``."""
    now = ctx.clock.now()
    ctx.nodes.deregister(node, caller.nsk_hash, now, mesh.left(ctx, node))
    return node.model_copy(update={"status": NodeStatus.DEREGISTERED, "deregistered_at": now, "updated_at": now})


MAX_NODE_ID_LENGTH = 128  # longer is no id of ours: not looked up


def readable_node(ctx: Context, subject: str, project_id: str, node_id: str) -> None:
    """Before an operator reads what a node sent or holds: the caller may read the project
    (403/404), and the node is one of its nodes, deregistered ones included (404
    ``node_not_found``)."""
    authorize_project(ctx.tenancy, subject, project_id, Permission.READ)
    if len(node_id) > MAX_NODE_ID_LENGTH or ctx.nodes.project_of(node_id) != project_id:
        raise NodeNotFound(f"Node {node_id} is not a node of this project.")


def list_nodes(
    ctx: Context, subject: str, project_id: str, *, limit: int, start_key: dict[str, Any] | None
) -> tuple[list[Node], dict[str, Any] | None]:
    authorize_project(ctx.tenancy, subject, project_id, Permission.READ)
    return ctx.nodes.list_nodes(project_id, limit=limit, start_key=start_key)


def set_labels(ctx: Context, subject: str, project_id: str, node_id: str, changes: dict[str, str | None]) -> Node:
    """Operator-set labels (a ``None`` value removes the label). Project admins only."""
    authorize_project(ctx.tenancy, subject, project_id, Permission.ADMIN)
    return ctx.nodes.set_labels(node_id, project_id, changes, ctx.clock.now())
