"""The template's DynamoDB stream events, run locally, as Lambda's event source mappings.

Records of a moto table's stream go to their consumer function in batches of
the event's ``BatchSize``, filtered by its ``FilterCriteria``, in stream order,
one batch at a time per stream (``ParallelizationFactor: 1``):

- a batch whose response lists ``batchItemFailures`` is retried from the first
  failed record, a batch whose function raised is retried whole, each up to
  ``MaximumRetryAttempts`` times; after that its records are skipped, logged;
- delivered records are dropped from moto's stream (DynamoDB keeps 24 hours of
  them; moto would keep every one, with both images, for as long as it runs).

In-process (tests), :class:`InProcessRuntime` pumps after every invocation, so
counters and the audit trail are current when a handler returns. The local
server pumps on a timer (:meth:`StreamPump.run_every`), as AWS delivers: a
fraction of a second after the write.

moto's stream is read from its backend in this process (the server hosts moto):
moto's ``GetRecords`` creates a new iterator object per call and never frees it.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from orchestrator_local.resources import ACCOUNT, REGION
from orchestrator_local.runtime import FunctionError
from orchestrator_local.template import StreamSource

log = logging.getLogger(__name__)


def check_pattern(pattern: Any) -> None:
    """Only the part of Lambda's filter syntax local mode implements: nested objects whose
    leaves are lists of exact values."""
    if isinstance(pattern, dict):
        for value in pattern.values():
            check_pattern(value)
        return
    if isinstance(pattern, list) and all(isinstance(v, str | int | float | bool) or v is None for v in pattern):
        return
    raise ValueError(f"unsupported filter pattern element {pattern!r} (local mode matches exact values)")


def matches(pattern: Any, value: Any) -> bool:
    """Whether a record (or a part of it) matches a filter pattern (see :func:`check_pattern`)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches(p, value[k]) for k, p in pattern.items())
    return any(value == allowed for allowed in pattern)


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A moto stream record as Lambda hands it to a function (epoch seconds, source ARN)."""
    event = copy.deepcopy(dict(record))
    created = event["dynamodb"].get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        event["dynamodb"]["ApproximateCreationDateTime"] = int(created.timestamp())
    event["eventVersion"] = "1.1"
    event["eventSourceARN"] = stream_arn
    return event


class StreamPump:
    """Delivers the stream records of the template's tables to their consumers."""

    def __init__(
        self,
        invoke: Callable[[str, Any], Any],
        sources: list[StreamSource],
        tables: Mapping[str, str],
        *,
        lock: Any = None,
    ) -> None:
        """``tables`` maps the tables' logical ids to their names; ``lock`` is the one moto's
        writes hold (:mod:`.moto_patches`), so a stream is never trimmed under a writer."""
        for source in sources:
            for pattern in source.patterns:
                check_pattern(pattern)
        self._invoke = invoke
        self._sources = sources
        self._tables = tables
        self._lock = lock or threading.RLock()
        self._pumping = threading.Lock()
        self.consumers = frozenset(s.function for s in sources)

    def _shard(self, source: StreamSource) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        table = dynamodb_backends[ACCOUNT][REGION].get_table(self._tables[source.table])
        return table, table.stream_shard

    def pump(self) -> int:
        """Deliver every record written so far; returns how many reached a consumer. A call
        made while another is delivering returns at once (the other one delivers them)."""
        if not self._pumping.acquire(blocking=False):
            return 0
        try:
            return sum(self._pump_source(source) for source in self._sources)
        finally:
            self._pumping.release()

    def _pump_source(self, source: StreamSource) -> int:
        table, shard = self._shard(source)
        if shard is None:
            return 0
        stream_arn = f"{table.table_arn}/stream/{table.latest_stream_label}"
        delivered = 0
        while True:
            with self._lock:
                taken = list(shard.items[: source.batch_size * 10])
                records = [r.to_json() for r in taken]
                # Delivered or filtered out: either way, these records are done.
                del shard.items[: len(taken)]
                shard.starting_sequence_number += len(taken)
            if not taken:
                return delivered
            selected = [
                lambda_record(r, stream_arn)
                for r in records
                if not source.patterns or any(matches(p, r) for p in source.patterns)
            ]
            for start in range(0, len(selected), source.batch_size):
                batch = selected[start : start + source.batch_size]
                self._deliver(source, batch)
                delivered += len(batch)

    def _deliver(self, source: StreamSource, batch: list[dict[str, Any]]) -> None:
        for _ in range(source.max_retries + 1):
            try:
                response = self._invoke(source.function, {"Records": batch})
            except FunctionError as error:
                log.warning("stream batch failed in %s: %s", source.function, error)
                continue
            failures = [f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])]
            if not failures:
                return
            first = min(int(f) for f in failures)
            batch = [r for r in batch if int(r["dynamodb"]["SequenceNumber"]) >= first]
        log.error("stream records skipped after %d retries by %s", source.max_retries, source.function)

    def run_every(self, seconds: float) -> threading.Event:
        """Pump on a timer in a daemon thread (set the returned event to stop)."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(seconds):
                try:
                    self.pump()
                except Exception:  # a consumer's bug must not stop the delivery thread
                    log.exception("stream delivery failed")

        threading.Thread(target=loop, name="stream-pump", daemon=True).start()
        return stop
