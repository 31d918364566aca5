"""The ports a use case needs, built once per container."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.clock import Clock, IdGenerator, SystemClock, Uuid7Generator
from orchestrator.settings import Settings, get_settings, require
from orchestrator.store.artifacts import ArtifactObjects, ArtifactStore
from orchestrator.store.audit import AuditStore
from orchestrator.store.counters import CounterStore
from orchestrator.store.executions import ExecutionStore
from orchestrator.store.feeds import FeedStore
from orchestrator.store.hook_baselines import HookBaselineStore
from orchestrator.store.mesh import MeshStore, SnapshotObjects
from orchestrator.store.node_data import NodeDataStore
from orchestrator.store.node_events import NodeEventStore
from orchestrator.store.nodes import NodeStore
from orchestrator.store.policies import PolicyStore
from orchestrator.store.reports import ReportStore
from orchestrator.store.secrets import SecretStore
from orchestrator.store.signing import SigningStore
from orchestrator.store.table import Table
from orchestrator.store.targets import TargetStore
from orchestrator.store.tenancy import TenancyStore


@dataclass(frozen=True)
class Context:
    settings: Settings
    table: Table
    clock: Clock = field(default_factory=SystemClock)
    ids: IdGenerator = field(default_factory=Uuid7Generator)

    @property
    def tenancy(self) -> TenancyStore:
        return TenancyStore(self.table)

    @property
    def nodes(self) -> NodeStore:
        return NodeStore(self.table, self.settings.event_index_shards)

    @property
    def executions(self) -> ExecutionStore:
        return ExecutionStore(self.table)

    @property
    def targets(self) -> TargetStore:
        return TargetStore(self.table)

    @property
    def counters(self) -> CounterStore:
        return CounterStore(self.table)

    @property
    def audit(self) -> AuditStore:
        return AuditStore(self.table)

    @property
    def node_events(self) -> NodeEventStore:
        return NodeEventStore(self.table, self.settings.event_index_shards)

    @property
    def hook_baselines(self) -> HookBaselineStore:
        return HookBaselineStore(self.table)

    @property
    def signing(self) -> SigningStore:
        return SigningStore(self.table)

    @property
    def feeds(self) -> FeedStore:
        return FeedStore(self.table, self.settings.event_index_shards)

    @property
    def reports(self) -> ReportStore:
        return ReportStore(self.table)

    @property
    def policies(self) -> PolicyStore:
        return PolicyStore(self.table)

    @property
    def node_data(self) -> NodeDataStore:
        return NodeDataStore(self.table)

    @property
    def secrets(self) -> SecretStore:
        return SecretStore(self.table)

    @property
    def mesh(self) -> MeshStore:
        return MeshStore(self.table)

    @property
    def mesh_snapshots(self) -> SnapshotObjects:
        """The peer snapshot objects (501 ``mesh_not_provisioned`` without the bucket)."""
        return SnapshotObjects(require(self.settings.output_bucket, "mesh_not_provisioned"))

    @property
    def artifacts(self) -> ArtifactStore:
        return ArtifactStore(self.table)

    @property
    def artifact_objects(self) -> ArtifactObjects:
        """The artifact bucket (501 ``artifacts_not_provisioned`` without it)."""
        return ArtifactObjects(require(self.settings.artifact_bucket, "artifacts_not_provisioned"))


def context_for(operation: str) -> Context:
    """The context, or 501 ``{operation}_not_provisioned`` when the table is not configured."""
    settings = get_settings()
    table_name = require(settings.table_name, f"{operation}_not_provisioned")
    return Context(settings=settings, table=Table(table_name, in_flight=settings.batch_writes_in_flight))
