"""Stateful property test: random report sequences against the real store (moto, in-process).

Whatever nodes report, in whatever order, the stored target states equal a
model of SPEC §8, every target's audit history is a path of the machine, and
the counters folded from the table's stream (and so the aggregate) match the
targets once the stream is delivered, and never run ahead of them before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from itertools import count

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from orchestrator.domain.audit import Closing
from orchestrator.domain.executions import TargetStatus, aggregate_from_counts
from orchestrator.domain.models import Domain
from orchestrator.domain.transitions import allowed
from orchestrator.errors import ExecutionAlreadyTerminal, InvalidStateTransition
from orchestrator.services import callbacks
from orchestrator.services.context import Context, context_for
from orchestrator_local.resources import Stack
from tests.integration.conftest import seed_pending_execution

NODES = 4
REPORTABLE = [s for s in TargetStatus if s is not TargetStatus.PENDING]
_serial = count()


OPEN_ORDER = [TargetStatus.PENDING, TargetStatus.ACK, TargetStatus.STARTED]


def spec_aggregate(states: list[TargetStatus], *, cancelled: bool) -> TargetStatus:
    """SPEC §8's aggregate, written out independently of the code under test."""
    still_open = [s for s in states if s in OPEN_ORDER]
    if still_open:
        return min(still_open, key=OPEN_ORDER.index)
    if all(s is TargetStatus.SUCCEEDED for s in states):
        return TargetStatus.SUCCEEDED
    if cancelled:
        return TargetStatus.CANCELLED
    if TargetStatus.FAILED in states:
        return TargetStatus.FAILED
    return TargetStatus.TIMEOUT


class ReportSequences(RuleBasedStateMachine):
    ctx: Context
    deliver_stream: Callable[[], int]

    def __init__(self) -> None:
        super().__init__()
        ctx = self.ctx
        run = next(_serial)
        self.execution_id = f"exec-{run}"
        self.nodes = [f"node-{run}-{i}" for i in range(NODES)]
        self.model = dict.fromkeys(self.nodes, TargetStatus.PENDING)
        self.cancelled = False
        seed_pending_execution(ctx, self.execution_id, self.nodes)

    def teardown(self) -> None:
        # moto copies the whole table for every transaction: keep it small between examples.
        client, table = self.ctx.table.client, self.ctx.table.name
        for item in self.ctx.table.query_all(
            index=None, key_condition="PK = :pk", values={":pk": f"EXEC#{self.execution_id}"}
        ):
            client.delete_item(TableName=table, Key={"PK": {"S": item["PK"]}, "SK": {"S": item["SK"]}})

    @rule(node=st.integers(0, NODES - 1), status=st.sampled_from(REPORTABLE), agent_style=st.booleans())
    def report(self, node: int, status: TargetStatus, agent_style: bool) -> None:
        node_id = self.nodes[node]
        before = self.model[node_id]
        try:
            callbacks.report(
                self.ctx,
                node_id,
                self.execution_id,
                callbacks.Report(status=status, agent_style=agent_style),
                callbacks.Reporter("test"),
            )
        except ExecutionAlreadyTerminal:
            assert before.is_terminal
        except InvalidStateTransition:
            assert not before.is_terminal and status.rank <= before.rank
        else:
            assert allowed(before, status)
            self.model[node_id] = status

    @precondition(lambda self: not self.cancelled)
    @rule()
    def operator_cancels(self) -> None:
        assert self.ctx.executions.request_cancel(self.execution_id, self.ctx.clock.now())
        closing = Closing(actor="user:test", new_id=self.ctx.ids.new_id, error="cancelled by operator")
        self.ctx.targets.close_open_targets(self.execution_id, TargetStatus.CANCELLED, self.ctx.clock.now(), closing)
        self.cancelled = True
        for node_id, state in self.model.items():
            if not state.is_terminal:
                self.model[node_id] = TargetStatus.CANCELLED

    @invariant()
    def stored_targets_match_the_model(self) -> None:
        stored = {t.node_id: t.status for t in self.ctx.targets.targets(self.execution_id)}
        assert stored == self.model

    @invariant()
    def counters_and_aggregate_match_the_targets(self) -> None:
        expected = Counter(s.value for s in self.model.values())
        # Before the stream is delivered: a target counted as terminal is terminal.
        lagging = self.ctx.counters.counts(self.execution_id, NODES)
        assert sum(lagging.values()) == NODES
        for status in TargetStatus:
            if status.is_terminal:
                assert lagging[status.value] <= expected[status.value], (status, lagging, expected)
        type(self).deliver_stream()
        counts = self.ctx.counters.counts(self.execution_id, NODES)
        assert {k: v for k, v in counts.items() if v} == dict(expected)
        expected_aggregate = spec_aggregate(list(self.model.values()), cancelled=self.cancelled)
        assert aggregate_from_counts(counts, cancelled_by_operator=self.cancelled) == expected_aggregate
        stored = self.ctx.executions.get(self.execution_id)
        assert stored is not None and stored.cancel_requested == self.cancelled

    @invariant()
    def each_history_is_a_path_of_the_machine(self) -> None:
        type(self).deliver_stream()
        events, _ = self.ctx.audit.page(self.execution_id, limit=200, start_key=None)
        for node_id in self.nodes:
            path = [e.status for e in events if e.node_id == node_id and not (e.detail or {}).get("refused")]
            ranks = [s.rank for s in path]
            assert ranks == sorted(set(ranks)), path  # strictly forward, no repeats
            assert sum(s.is_terminal for s in path) <= 1
            # The history ends where the target is: every accepted move, cancels included, is recorded.
            assert (path[-1] if path else TargetStatus.PENDING) == self.model[node_id], (node_id, path)


def test_random_report_sequences_keep_the_machine_closed(stack: Stack) -> None:
    ctx = context_for("test")
    ctx.tenancy.create_domain(
        Domain(id="d", name="d", live_execution_ceiling=10_000, created_at=ctx.clock.now()), admin_subject="x"
    )
    ReportSequences.ctx = ctx
    assert stack.pump is not None
    ReportSequences.deliver_stream = stack.pump
    runner = ReportSequences.TestCase()
    runner.settings = settings(max_examples=10, stateful_step_count=10, deadline=None)
    runner.runTest()
