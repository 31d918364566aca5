"""The ports a use case needs, built once per container."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.clock import Clock, IdGenerator, SystemClock, Uuid7Generator
from orchestrator.settings import Settings, get_settings, require
from orchestrator.store.executions import ExecutionStore
from orchestrator.store.nodes import NodeStore
from orchestrator.store.table import Table
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
        return NodeStore(self.table)

    @property
    def executions(self) -> ExecutionStore:
        return ExecutionStore(self.table)


def context_for(operation: str) -> Context:
    """The context, or 501 ``{operation}_not_provisioned`` when the table is not configured."""
    settings = get_settings()
    table_name = require(settings.table_name, f"{operation}_not_provisioned")
    return Context(settings=settings, table=Table(table_name))
