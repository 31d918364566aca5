"""The relay's hub: the streams this process holds, what it knows of recent events, and
delivery (SPEC §11, §17, §20; docs/capacity.md, docs/event-relay.md).

Opening a stream takes two decisions, each made from memory when it can be:

* **the key**: the presented key's hash is compared (constant time) with the credential this
  process read less than ``refresh_seconds`` ago; otherwise the credential is read, strongly
  consistent, as the Lambda path does (and a wrong key is refused 401/403 there);
* **the replay**: nothing is read when the hub knows there is nothing to send: the event
  index has been read without a gap since ``Last-Event-ID`` was minted (or since a replay after
  that same id found nothing), and no event of the node, nor of its feeds that concerns it,
  came after it. Otherwise the events after it are read from the table with
  :func:`orchestrator.services.node_feed.pending_events`, the Lambda path's code.

The real agent ends every stream after 30 s (its HTTP client's timeout) and reconnects at
once, so reconnects are the relay's steady load: the fast path is what keeps an idle fleet
free of AWS requests. A key is refused the fast path as soon as its hash differs; a node
deregistered (its ``peer_removed`` event) is forgotten and its streams end.

Live events come from the index poller (:mod:`orchestrator.relay.poller`) in id order; each
is signed at delivery, as on the Lambda path, and offered to the streams of its node (a
node's own event) or to every stream of the feed it concerns. A stream never gets an id
twice; an id older than one already sent (it showed in the index late) is sent all the same
and counted as late: losing an event is worse than an out-of-order one.

Everything here runs on the event loop's thread; AWS calls go to worker threads.
"""

from __future__ import annotations

import asyncio
import bisect
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from orchestrator import secrets
from orchestrator.domain.credentials import NodeCredential, hashes_match, secret_hash
from orchestrator.domain.event_index import floor_id, minted_at
from orchestrator.domain.feed import FeedEvent
from orchestrator.domain.node_events import NodeEvent
from orchestrator.domain.signing import Keyring
from orchestrator.events.envelope import sse_retry
from orchestrator.http.node_auth import authenticate_node
from orchestrator.observability import logger
from orchestrator.services import node_feed
from orchestrator.services.context import Context
from orchestrator.store.event_index import IndexedEvent
from orchestrator.store.feeds import DEPLOYMENT_FEED, project_feed

T = TypeVar("T")
KEEP_ALIVE = node_feed.SSE_KEEP_ALIVE
OPENING = KEEP_ALIVE + sse_retry(node_feed.RETRY_MILLISECONDS)
REFRESH_SECONDS = 3600.0  # deregistrations are pushed (peer_removed); this is the safety net
MAX_FEED_MEMORY = 2_000  # feed events remembered per feed; older ones send a stream the full way
MAX_REPLAY_ROUNDS = 10  # pages of pending_events (100 events each) replayed when a stream opens
MAX_SENT_IDS = 1024
QUIET_MARGIN = timedelta(seconds=1)  # a replay's reads may not see what was written just before
CONFIRM_SKEW = timedelta(seconds=5)  # an agent's Last-Event-ID minted later than now + this is ignored
PEER_REMOVED = "peer_removed"
CREDENTIAL_CHANGES = frozenset({PEER_REMOVED, "peer_key_rotated"})
SIGNING_KEY_ROTATED = "signing_key_rotated"


class Closed:
    """Put on a stream's queue to end it."""


CLOSE = Closed()


@dataclass(eq=False)
class Stream:
    """One held response: the node it was opened for (its credential at opening) and the
    SSE text waiting to be written."""

    caller: NodeCredential
    cursor: str | None
    queue: asyncio.Queue[str | Closed] = field(default_factory=asyncio.Queue)
    sent: dict[str, None] = field(default_factory=dict)
    replaying: bool = False
    held: list[tuple[str, str]] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        return self.caller.node_id

    def offer(self, event_id: str, message: str) -> bool:
        """Queue ``message`` unless this stream already carried ``event_id``; True if queued
        (or held while the stream's replay runs)."""
        if event_id in self.sent:
            return False
        if self.replaying:
            self.held.append((event_id, message))
            return True
        self._mark(event_id)
        self.queue.put_nowait(message)
        return True

    def _mark(self, event_id: str) -> None:
        self.sent[event_id] = None
        if len(self.sent) > MAX_SENT_IDS:
            del self.sent[next(iter(self.sent))]
        if self.cursor is None or event_id > self.cursor:
            self.cursor = event_id

    def replayed(self, messages: list[tuple[str, str]]) -> None:
        """End the replay: its messages first, then what arrived meanwhile (in id order)."""
        self.replaying = False
        for event_id, message in [*messages, *sorted(self.held)]:
            if event_id not in self.sent:
                self._mark(event_id)
                self.queue.put_nowait(message)
        self.held = []


def _without_id(message: str) -> str:
    return message.split("\n", 1)[1] if message.startswith("id: ") else message


@dataclass
class Counters:
    event_requests: int = 0
    credential_reads: int = 0  # opens that read the node's credential (none: verified recently)
    opens_without_replay: int = 0
    replays: int = 0  # opens that read the node's events from the table
    refused: int = 0
    events_delivered: int = 0
    late_events: int = 0
    cursor_writes: int = 0


@dataclass
class _Verified:
    credential: NodeCredential
    at: float


class Hub:
    def __init__(
        self,
        ctx: Context,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ctx = ctx
        self.refresh_seconds = refresh_seconds
        self.monotonic = monotonic
        self.now = now
        self.counters = Counters()
        self.horizon: datetime | None = None  # the index has been read without a gap since
        self._by_node: dict[str, set[Stream]] = {}
        self._by_feed: dict[str, set[Stream]] = {}
        self._verified: dict[str, _Verified] = {}
        self._cursors: dict[str, str] = {}  # node -> the newest event id its agent confirmed having
        self._latest: dict[str, str] = {}  # node -> its newest own event the index showed
        # node -> (the id a replay started after, a time floor it found nothing before)
        self._quiet: dict[str, tuple[str | None, str]] = {}
        self._feed_events: dict[str, list[FeedEvent]] = {}
        self._feed_floor: dict[str, str] = {}  # feed -> newest event id forgotten
        self._unwritten: dict[str, str] = {}  # node -> delivery cursor to store
        self._forgotten: dict[str, float] = {}  # node -> when its credential was last forgotten
        # Delivery's reads run on threads of their own: a storm of openings (every agent after a
        # gap) must not hold live events back behind its reads.
        self._delivery_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="relay-delivery")
        self._lags: deque[float] = deque(maxlen=10_000)  # seconds from an event's id to its queueing

    # Streams ------------------------------------------------------------------------------
    @property
    def streams_open(self) -> int:
        return sum(len(streams) for streams in self._by_node.values())

    async def open(self, node_id: str, nsk: str | None, last_event_id: str | None) -> Stream:
        """A stream for the node ``nsk`` authenticates (raises 401/403 as the Lambda path
        does), with what must be replayed already queued."""
        self.counters.event_requests += 1
        credential = self._recently_verified(node_id, nsk)
        if credential is None:
            reading = self.monotonic()
            try:
                credential = await asyncio.to_thread(authenticate_node, self.ctx.nodes, nsk, node_id)
            except Exception:
                self.counters.refused += 1
                raise
            self.counters.credential_reads += 1
            if self._forgotten.get(node_id, -1.0) < reading:  # not a read from before a revocation
                self._verified[node_id] = _Verified(credential, reading)
        if last_event_id:
            self._confirm(credential, last_event_id)
        after = last_event_id or self._cursors.get(node_id) or credential.events_delivered_through
        if self._known_since(credential, after) and not self._news_after(credential, after or ""):
            self.counters.opens_without_replay += 1
            stream = Stream(credential, after)
            self._register(stream)
            return stream
        return await self._open_with_replay(credential, after)

    async def _open_with_replay(self, credential: NodeCredential, after: str | None) -> Stream:
        self.counters.replays += 1
        node_id = credential.node_id
        stream = Stream(credential, after, replaying=True)
        self._register(stream)  # what the index shows meanwhile is held, then sent after the replay
        started = self.now()
        try:
            messages, scanned, complete = await asyncio.to_thread(self._replay, credential, after)
        except BaseException:
            self.close(stream)
            raise
        if complete and not messages:
            # Nothing after ``after`` up to now: a reconnect with the same id may open from
            # memory while the index has been read without a gap since this replay.
            self._quiet[node_id] = (after, floor_id(started - QUIET_MARGIN))
        if scanned is not None and (stream.cursor is None or scanned > stream.cursor):
            stream.cursor = scanned
        stream.replayed(messages)
        if not complete:
            # More than one opening's worth: end here, before any live event could move the
            # agent's Last-Event-ID past the rest; it reconnects at once for the next pages.
            stream.queue.put_nowait(CLOSE)
        self.counters.events_delivered += len(messages)
        return stream

    def _recently_verified(self, node_id: str, nsk: str | None) -> NodeCredential | None:
        """The credential this process verified less than ``refresh_seconds`` ago, if ``nsk``
        is still its key (a constant-time comparison of the hashes)."""
        verified = self._verified.get(node_id)
        if not nsk or verified is None or self.monotonic() - verified.at > self.refresh_seconds:
            return None
        credential = verified.credential
        return credential if credential.active and hashes_match(secret_hash(nsk), credential.nsk_hash) else None

    def close(self, stream: Stream) -> None:
        """Forget a stream (its response ended)."""
        for registry, key in ((self._by_node, stream.node_id), (self._by_feed, self._feed_of(stream.caller))):
            if key is None:
                continue
            streams = registry.get(key)
            if streams is not None:
                streams.discard(stream)
                if not streams:
                    del registry[key]

    def end_all(self) -> None:
        """End every stream (shutdown): each agent reconnects at once, to another task."""
        for streams in list(self._by_node.values()):
            for stream in list(streams):
                stream.queue.put_nowait(CLOSE)

    def _register(self, stream: Stream) -> None:
        self._by_node.setdefault(stream.node_id, set()).add(stream)
        feed = self._feed_of(stream.caller)
        if feed is not None:
            self._by_feed.setdefault(feed, set()).add(stream)

    @staticmethod
    def _feed_of(caller: NodeCredential) -> str | None:
        return project_feed(caller.project_id) if caller.project_id else None

    def _known_since(self, credential: NodeCredential, after: str | None) -> bool:
        """Whether the index has been read without a gap since nothing was left to send after
        ``after``: since it was minted, or since a replay after it found nothing."""
        known_from = after
        quiet = self._quiet.get(credential.node_id)
        if quiet is not None and quiet[0] == after:
            known_from = max(after or "", quiet[1])
        minted = minted_at(known_from) if known_from else None
        return minted is not None and self.horizon is not None and minted >= self.horizon

    def _news_after(self, credential: NodeCredential, since: str) -> bool:
        """Whether an event the hub knows of, or may have forgotten, concerns the node after ``since``."""
        if self._latest.get(credential.node_id, "") > since:
            return True
        feeds = [DEPLOYMENT_FEED, *([project_feed(credential.project_id)] if credential.project_id else [])]
        for feed in feeds:
            if self._feed_floor.get(feed, "") > since:
                return True
            for event in reversed(self._feed_events.get(feed, ())):
                if event.event_id <= since:
                    break
                if event.audience.concerns(credential.node_id, credential.labels):
                    return True
        return False

    def _replay(self, caller: NodeCredential, after: str | None) -> tuple[list[tuple[str, str]], str | None, bool]:
        """(signed messages, id scanned through, whether the end was reached) of the events
        after ``after``: the Lambda path's reads, strongly consistent (an event the index
        showed before this stream registered must be in them), page after page until a read
        reaches the end of every source or makes no progress, or ``MAX_REPLAY_ROUNDS`` pages
        were sent (worker thread). One round is the common case: a reconnect wave during a
        fan-out replays hundreds of nodes, each three Queries a round."""
        messages: list[tuple[str, str]] = []
        cursor = after
        keyring: Keyring | None = None
        for _ in range(MAX_REPLAY_ROUNDS):
            events, scanned, at_end = node_feed.read_pending(self.ctx, caller, cursor, deployment=True, consistent=True)
            if events:
                if keyring is None:
                    keyring = secrets.signing_keyring()
                messages.extend((e.event_id, node_feed.signed_message(keyring, e, self.now())) for e in events)
            if scanned is None or scanned == cursor:
                return messages, cursor, True
            cursor = scanned
            if at_end:  # every source was read to its end: another round would find nothing
                return messages, cursor, True
        return messages, cursor, False

    def _confirm(self, credential: NodeCredential, last_event_id: str) -> None:
        """The agent says it has every event through ``last_event_id`` (it reconnected with it):
        the node's delivery cursor, for a later reconnect without ``Last-Event-ID`` (a restarted
        agent). A queued event only moves the cursor once the agent confirms it so: one queued
        on a stream the agent was just ending (plexd cuts each after 30 s) never reached it, and
        an agent that had no id yet would otherwise never be sent it again."""
        node_id = credential.node_id
        minted = minted_at(last_event_id)
        if minted is None or minted > self.now() + CONFIRM_SKEW:
            return  # not an id this deployment minted (a client's bug): it never moves the cursor
        if last_event_id > max(self._cursors.get(node_id, ""), credential.events_delivered_through or ""):
            self._cursors[node_id] = last_event_id
            self._unwritten[node_id] = last_event_id

    # Live events ------------------------------------------------------------------------
    async def deliver(self, events: Sequence[IndexedEvent], horizon: datetime | None) -> None:
        """Hand the index's new events (id order) to the streams they concern.

        Memory first, for the whole batch and with no I/O (the node's newest event, the feed's
        events, deregistrations and key rotations): whatever fails later, the next opening of a
        stream knows there is news. Then each event's delivery on its own: one that fails ends
        the streams it concerns, which reconnect and replay it."""
        if self.horizon is not None and horizon != self.horizon:
            # The index was not read for a while: what it showed meanwhile is unknown. Every key
            # is checked again (a deregistration's peer_removed may be among it), and every
            # stream ends so that its agent reconnects from its own last id and is replayed
            # (the stream would otherwise carry newer events past the unknown ones).
            self._verified.clear()
            self.end_all()
        self.horizon = horizon
        for indexed in events:
            self._learn(indexed)
        keyring: Keyring | None = None
        for indexed in events:
            event = indexed.event
            if event is None:
                continue
            try:
                if isinstance(event, NodeEvent):
                    streams = self._by_node.get(event.node_id)
                    if not streams:
                        continue
                    if keyring is None:
                        keyring = await self._delivering(secrets.signing_keyring)
                    self._offer(streams, event.event_id, node_feed.signed_message(keyring, event, self.now()))
                    self._lag(event.event_id)
                else:
                    assert indexed.feed is not None
                    await self._deliver_feed_event(indexed.feed, event)
            except Exception:  # noqa: BLE001 - the streams concerned replay it after reconnecting
                logger.warning("event not delivered; its streams end", event_id=event.event_id)
                for stream in self._concerned(indexed):
                    stream.queue.put_nowait(CLOSE)

    async def _delivering(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._delivery_threads, call, *args)

    def _learn(self, indexed: IndexedEvent) -> None:
        event = indexed.event
        if event is None:
            if indexed.changed_node is not None:
                self.forget_node(indexed.changed_node)  # its labels changed: read them again
            return
        if isinstance(event, NodeEvent):
            if event.event_id > self._latest.get(event.node_id, ""):
                self._latest[event.node_id] = event.event_id
            return
        assert indexed.feed is not None
        self._remember(indexed.feed, event)
        if event.event_type in CREDENTIAL_CHANGES:
            # Deregistered (its key is revoked) or its mesh key rotated (its pair keys change):
            # its next stream reads its credential afresh, and the ones it holds end now.
            node_id = event.payload.get("peer_id") or event.audience.exclude_node
            if isinstance(node_id, str):
                self.forget_node(node_id)

    def _concerned(self, indexed: IndexedEvent) -> list[Stream]:
        event = indexed.event
        if event is None:
            return []
        if isinstance(event, NodeEvent):
            return list(self._by_node.get(event.node_id, ()))
        if indexed.feed == DEPLOYMENT_FEED:
            streams = [s for group in self._by_node.values() for s in group]
        else:
            streams = list(self._by_feed.get(indexed.feed or "", ()))
        return [s for s in streams if event.audience.concerns(s.node_id, s.caller.labels)]

    async def _deliver_feed_event(self, feed: str, event: FeedEvent) -> None:
        concerned = self._concerned(IndexedEvent(event, feed=feed))
        if concerned:
            fresh = event.event_type == SIGNING_KEY_ROTATED
            messages = await self._delivering(self._feed_messages, event, [s.caller for s in concerned], fresh)
            for stream, message in zip(concerned, messages, strict=True):
                if message is not None:
                    self._offer([stream], event.event_id, message)

    def _feed_messages(self, event: FeedEvent, callers: list[NodeCredential], fresh: bool) -> list[str | None]:
        """Each recipient's signed message of a feed event (worker thread: a recipient's pair
        key or granted secrets may need reads)."""
        keyring = secrets.signing_keyring(fresh=fresh)
        messages: list[str | None] = []
        for caller in callers:
            delivered = node_feed.deliverable(self.ctx, caller, event)
            messages.append(None if delivered is None else node_feed.signed_message(keyring, delivered, self.now()))
        return messages

    def _offer(self, streams: Iterable[Stream], event_id: str, message: str) -> None:
        for stream in list(streams):
            late = stream.cursor is not None and event_id < stream.cursor
            # Sent without its ``id:`` line: the agent's Last-Event-ID stays at the newest id it
            # has (plexd keeps the last id it read), so a reconnect does not resend newer events.
            if stream.offer(event_id, _without_id(message) if late else message):
                self.counters.events_delivered += 1
                self.counters.late_events += int(late)

    def _lag(self, event_id: str) -> None:
        minted = minted_at(event_id)
        if minted is not None:
            self._lags.append((self.now() - minted).total_seconds())

    def delivery_lag(self) -> dict[str, float | None]:
        """Seconds from an event's id being minted to its queueing on a stream (the last
        10,000 live deliveries): the index's and the relay's share of delivery."""
        lags = sorted(self._lags)
        if not lags:
            return {"delivery_lag_p50_s": None, "delivery_lag_p99_s": None}
        centiles = statistics.quantiles(lags, n=100) if len(lags) > 1 else [lags[0]] * 99
        return {"delivery_lag_p50_s": round(centiles[49], 3), "delivery_lag_p99_s": round(centiles[98], 3)}

    def forget_node(self, node_id: str) -> None:
        """A node's credential changed (deregistered, key rotated): its next stream reads it
        afresh (and is refused, once deregistered), and the ones it holds end now."""
        self._verified.pop(node_id, None)
        self._forgotten[node_id] = self.monotonic()
        for stream in list(self._by_node.get(node_id, ())):
            stream.queue.put_nowait(CLOSE)

    def _remember(self, feed: str, event: FeedEvent) -> None:
        events = self._feed_events.setdefault(feed, [])
        if not events or events[-1].event_id < event.event_id:
            events.append(event)
        else:
            bisect.insort(events, event, key=lambda e: e.event_id)
        if len(events) > MAX_FEED_MEMORY:
            forgotten = events[: len(events) - MAX_FEED_MEMORY // 2]  # trimmed in halves, not per event
            del events[: len(forgotten)]
            self._feed_floor[feed] = max(self._feed_floor.get(feed, ""), forgotten[-1].event_id)

    # Delivery cursors ---------------------------------------------------------------------
    def has_unwritten(self) -> bool:
        return bool(self._unwritten)

    def take_unwritten(self) -> dict[str, str]:
        """The delivery cursors to store (and forget them)."""
        unwritten, self._unwritten = self._unwritten, {}
        return unwritten

    def write_cursors(self, cursors: dict[str, str]) -> None:
        """Store delivery cursors (worker thread): where a node that reconnects without
        ``Last-Event-ID`` (a restarted agent) resumes, on any task or on the Lambda path."""
        for node_id, event_id in cursors.items():
            try:
                self.ctx.nodes.mark_events_delivered(node_id, event_id)
            except Exception:  # noqa: BLE001 - a cursor is advisory; it is tried again with the next ones
                logger.warning("delivery cursor not stored", node_id=node_id)
                self._unwritten.setdefault(node_id, event_id)  # unless a newer one came meanwhile
                continue
            self.counters.cursor_writes += 1
