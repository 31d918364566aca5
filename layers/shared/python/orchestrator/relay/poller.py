"""The relay's reader of the event index (GSI5): every event filed in the last few seconds,
each handed over once.

Every ``interval`` seconds it queries the shards of the minutes that the window
``[now - lookback, now]`` touches for ids after the last one it saw there; at least every
``lookback / 2`` seconds a poll re-reads the whole window's ids and keys instead (a sweep; then
the items of those it had not seen), to pick up an event that became visible late (an index is
eventually consistent; a writer mints an id just before its write), as long as it shows within
``lookback / 2`` seconds of being minted.

Writers keep several batch writes in flight (and an index is eventually consistent), so an
event often shows a moment after a newer one, behind the cursor. While polls keep finding events
(and ``2 * settle`` seconds after), a poll every ``settle / 4`` seconds also re-reads the ids of
the last ``settle`` seconds before each cursor, and reads the items of those it had not seen:
such an event is handed over within a quarter of ``settle``, not at the next sweep. (Not every
poll: during a fan-out each re-read reads, and DynamoDB sizes, hundreds of ids.)

When two sweeps are more than ``lookback`` apart (polls failed, or were slow: a loaded host), the
later one reaches back to where the earlier one's window started, up to ``catch_up`` seconds:
the windows meet, and nothing is lost to the stall. ``horizon`` is the moment from which this
reader has missed nothing (given that bound): the start of its first window, moved forward only
when a stall outlasted ``catch_up`` (to ``catch_up`` seconds back: as far as that sweep reads).
The hub ends every stream when it moves: each agent reconnects and is replayed, a storm of
reads that a loaded host could least afford.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from orchestrator.domain.event_index import floor_id, minted_at, minutes_between
from orchestrator.store.event_index import EventIndexStore, IndexedEvent
from orchestrator.store.keys import Key

DEFAULT_LOOKBACK_SECONDS = 5.0
DEFAULT_SETTLE_SECONDS = 1.0
DEFAULT_CATCH_UP_SECONDS = 120.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class IndexPoller:
    def __init__(
        self,
        index: EventIndexStore,
        shards: int,
        *,
        lookback_seconds: float = DEFAULT_LOOKBACK_SECONDS,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        catch_up_seconds: float = DEFAULT_CATCH_UP_SECONDS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if shards <= 0:
            raise ValueError("the event index has no shards (EVENT_INDEX_SHARDS)")
        self.index = index
        self.shards = shards
        self.lookback = timedelta(seconds=lookback_seconds)
        self.settle = timedelta(seconds=settle_seconds)
        self.catch_up = timedelta(seconds=max(catch_up_seconds, lookback_seconds))
        self.clock = clock
        self.horizon: datetime | None = None
        self.polls = 0
        self.queries = 0
        self.ids_read = 0  # index entries read as ids and keys (sweeps, settle re-reads)
        self.items_read = 0  # whole items read (after a cursor, or by key)
        self._cursors: dict[tuple[str, int], str] = {}
        self._seen: dict[str, datetime] = {}
        self._last_sweep: datetime | None = None
        self._last_found: datetime | None = None  # when a poll last found an event
        self._last_settle: datetime | None = None  # when a poll last re-read behind its cursors

    def poll(self) -> list[IndexedEvent]:
        """The events not handed over before, in id order (raises what the store raises:
        the caller logs it and polls again; ``horizon`` then tells what was missed)."""
        now = self.clock()
        sweep = self._last_sweep is None or now - self._last_sweep >= self.lookback / 2
        start, gap = self._window_start(now) if sweep else (now - self.lookback, False)
        floor = floor_id(start)
        window = minutes_between(start, now)
        settling = self._settling(now)
        found: list[IndexedEvent] = []
        for minute in window:
            for shard in range(self.shards):
                bucket = (minute, shard)
                self.queries += 1
                if sweep:
                    found.extend(self._sweep(bucket, floor))
                else:
                    found.extend(self._read_from_cursor(bucket, floor, settling=settling))
        self.polls += 1
        if settling and not sweep:
            self._last_settle = now
        if sweep:
            if gap:
                self.horizon = start  # first sweep, or a gap: nothing before this window is known
            self._last_sweep = now
        self._forget(now, window)
        fresh: list[IndexedEvent] = []
        for event in found:
            if event.event_id not in self._seen:
                self._seen[event.event_id] = now + self.lookback + self.catch_up  # as far as a sweep reaches
                fresh.append(event)
        fresh.sort(key=lambda e: e.event_id)
        if fresh:
            self._last_found = now
        return fresh

    def _sweep(self, bucket: tuple[str, int], floor: str) -> list[IndexedEvent]:
        """The bucket's events after ``floor`` not handed over before (their ids read, then
        the items of those not seen)."""
        minute, shard = bucket
        ids = self.index.ids_after(minute, shard, floor)
        self.ids_read += len(ids)
        if ids:
            self._cursors[bucket] = max(self._cursors.get(bucket, ""), ids[-1][0])
        return self._unseen(ids)

    def _settling(self, now: datetime) -> bool:
        """Whether this poll re-reads behind its cursors: polls found events lately, and the last
        re-read is ``settle / 4`` old."""
        busy = self._last_found is not None and now - self._last_found <= 2 * self.settle
        return busy and (self._last_settle is None or now - self._last_settle >= self.settle / 4)

    def _window_start(self, now: datetime) -> tuple[datetime, bool]:
        """(where a sweep at ``now`` starts reading, whether nothing before it is known): the
        window; after a stall, back to where the last sweep's window started (the windows
        meet), unless the stall outlasted ``catch_up`` (a gap)."""
        last = self._last_sweep
        if last is None:
            return now - self.lookback, True
        if now - last <= self.lookback:
            return now - self.lookback, False
        if now - last <= self.catch_up:
            return last - self.lookback, False
        return now - self.catch_up, True  # as far back as a catch-up reads: the least is lost

    def _read_from_cursor(self, bucket: tuple[str, int], floor: str, *, settling: bool) -> list[IndexedEvent]:
        """The bucket's events after its cursor; while ``settling``, also the ones of the last
        ``settle`` seconds before it that were not handed over (they showed after newer ones)."""
        minute, shard = bucket
        cursor = self._cursors.get(bucket)
        page = self.index.after(minute, shard, max(floor, cursor or floor))
        self.items_read += len(page)
        if page:
            self._cursors[bucket] = max(self._cursors.get(bucket, ""), page[-1].event_id)
        if cursor is None or not settling:
            return page
        lowest = max(floor, self._settled(cursor))
        if lowest >= cursor:  # the bucket's newest event is older than the window: nothing to re-read
            return page
        self.queries += 1
        ids = self.index.ids_after(minute, shard, lowest, through=cursor)
        self.ids_read += len(ids)
        return page + self._unseen(ids)

    def _unseen(self, ids: list[tuple[str, Key]]) -> list[IndexedEvent]:
        """The events of ``ids`` not handed over before, read by key."""
        missing = [key for event_id, key in ids if event_id not in self._seen]
        self.items_read += len(missing)
        return self.index.load(missing) if missing else []

    def _settled(self, cursor: str) -> str:
        """``settle`` before the id ``cursor`` (where a re-read of its bucket starts)."""
        minted = minted_at(cursor)
        return floor_id(minted - self.settle) if minted is not None else cursor

    def _forget(self, now: datetime, window: list[str]) -> None:
        for bucket in [b for b in self._cursors if b[0] not in window]:
            del self._cursors[bucket]
        while self._seen:  # in insertion order, which is expiry order: only the expired are visited
            oldest = next(iter(self._seen))
            if self._seen[oldest] >= now:
                break
            del self._seen[oldest]
