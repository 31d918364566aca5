"""What a node pulls: its event stream (SSE, signed at delivery) and its state (SPEC §11, §5).

Events are stored unsigned; each delivery signs a fresh envelope (new
``issued_at`` and nonce), so a node that reconnects after a while still gets
events its verifier accepts (they reject envelopes older than 5 minutes).
Replays after ``Last-Event-ID`` resend only what follows that id; without it,
what the node has not been sent yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from orchestrator import secrets
from orchestrator.clock import rfc3339
from orchestrator.domain.credentials import NodeCredential
from orchestrator.domain.feed import FeedEvent
from orchestrator.domain.mesh import pair_psk
from orchestrator.domain.models import Node
from orchestrator.domain.node_events import NodeEvent
from orchestrator.domain.secrets import SECRETS_UPDATED
from orchestrator.domain.signing import Keyring, private_key
from orchestrator.events.envelope import new_nonce, signed_envelope_json, sse_message, sse_retry
from orchestrator.services import mesh, node_data, policies
from orchestrator.services import secrets as node_secrets
from orchestrator.services.context import Context
from orchestrator.store.feeds import DEPLOYMENT_FEED, project_feed

MAX_EVENTS_PER_RESPONSE = 100
POLL_INTERVAL_SECONDS = 0.25
RETRY_MILLISECONDS = 1000
SSE_KEEP_ALIVE = ": keep-alive\n\n"


def event_stream(
    ctx: Context,
    caller: NodeCredential,
    last_event_id: str | None,
    *,
    hold_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The SSE body: a ``: keep-alive`` comment, the events after ``last_event_id`` (or the
    undelivered ones), waiting up to ``hold_seconds`` for the first one, then a ``retry:``
    hint. The events are the node's own and those of its project's and the deployment's feeds
    that concern it, merged in id order."""
    after = last_event_id or caller.events_delivered_through
    deadline = time.monotonic() + hold_seconds
    events, scanned = pending_events(ctx, caller, after, deployment=True)
    while not events and time.monotonic() < deadline:
        sleep(POLL_INTERVAL_SECONDS)
        # The deployment feed (signing-key rotations, rare) is read once per request.
        events, more = pending_events(ctx, caller, scanned, deployment=False)
        scanned = more or scanned
    keyring = secrets.signing_keyring() if events else None
    # A comment first: every held response carries a byte within the hold (at most 25 s,
    # under the agent's 30 s request timeout and 90 s idle limit), events or not.
    parts = [SSE_KEEP_ALIVE]
    for event in events:
        assert keyring is not None
        parts.append(signed_message(keyring, event, ctx.clock.now()))
    if scanned and scanned != after:
        ctx.nodes.mark_events_delivered(caller.node_id, scanned)
    parts.append(sse_retry(RETRY_MILLISECONDS))
    return "".join(parts)


def signed_message(keyring: Keyring, event: NodeEvent, now: datetime) -> str:
    """One SSE message: ``event`` in a freshly signed envelope (new ``issued_at`` and nonce),
    under the key that signs events minted when this one was (``Keyring.seed_for``)."""
    data = signed_envelope_json(
        private_key(keyring.seed_for(event.event_id, now)),
        event_type=event.event_type,
        event_id=event.event_id,
        payload=event.payload,
        issued_at=now,
        nonce=new_nonce(),
    )
    return sse_message(event.event_id, event.event_type, data)


def deliverable(ctx: Context, caller: NodeCredential, event: FeedEvent) -> NodeEvent | None:
    """A feed event as ``caller`` receives it (its pair key, its granted secrets filled in),
    or None when it does not concern the node."""
    if not _concerns(caller, event):
        return None
    return _as_delivered(ctx, caller, event, _SecretRefs(ctx, caller))


MAX_SCAN_ROUNDS = 5


class Pending(NamedTuple):
    """A read of a node's pending events: at most ``MAX_EVENTS_PER_RESPONSE`` of them, the id
    scanned through, and whether every source was read to its end (no page was full)."""

    events: list[NodeEvent]
    scanned: str | None
    at_end: bool


def pending_events(
    ctx: Context, caller: NodeCredential, after: str | None, *, deployment: bool, consistent: bool = False
) -> tuple[list[NodeEvent], str | None]:
    """The next events for ``caller`` after ``after`` (at most ``MAX_EVENTS_PER_RESPONSE``),
    and the id scanned through (events of a feed that do not concern the node are passed
    over, and the delivery cursor moves past them too)."""
    pending = read_pending(ctx, caller, after, deployment=deployment, consistent=consistent)
    return pending.events, pending.scanned


def read_pending(
    ctx: Context, caller: NodeCredential, after: str | None, *, deployment: bool, consistent: bool = False
) -> Pending:
    """:func:`pending_events`, telling whether the read reached the end of every source.

    Each source is read one page at a time; the merge stops at the lowest last id of a full
    page, so an event of another source beyond it is never skipped. A page of events that all
    concern others moves on to the next, up to ``MAX_SCAN_ROUNDS`` pages per call.
    """
    feeds = [project_feed(caller.project_id)] if caller.project_id else []
    if deployment:
        feeds.append(DEPLOYMENT_FEED)
    cursor = after
    for _ in range(MAX_SCAN_ROUNDS):
        own = ctx.node_events.after(caller.node_id, cursor, MAX_EVENTS_PER_RESPONSE, consistent=consistent)
        shared = [ctx.feeds.after(feed, cursor, MAX_EVENTS_PER_RESPONSE, consistent=consistent) for feed in feeds]
        pages: list[Sequence[NodeEvent | FeedEvent]] = [own, *shared]
        full = [page[-1].event_id for page in pages if len(page) == MAX_EVENTS_PER_RESPONSE]
        bound = min(full) if full else None
        merged = sorted((e for page in pages for e in page), key=_event_id)
        if bound is not None:
            merged = [e for e in merged if e.event_id <= bound]
        refs = _SecretRefs(ctx, caller)
        delivered = [_as_delivered(ctx, caller, e, refs) for e in merged if _concerns(caller, e)]
        if len(delivered) > MAX_EVENTS_PER_RESPONSE:
            delivered = delivered[:MAX_EVENTS_PER_RESPONSE]
            return Pending(delivered, delivered[-1].event_id, at_end=False)
        scanned = merged[-1].event_id if merged else cursor
        if delivered or bound is None:
            return Pending(delivered, scanned, at_end=bound is None)
        cursor = bound
    return Pending([], cursor, at_end=False)


def _event_id(event: NodeEvent | FeedEvent) -> str:
    return event.event_id


def _concerns(caller: NodeCredential, event: NodeEvent | FeedEvent) -> bool:
    return isinstance(event, NodeEvent) or event.audience.concerns(caller.node_id, caller.labels)


class _SecretRefs:
    """The node's granted secrets, read at most once per delivery (``node_secrets_updated``
    carries them all: the agent replaces its secret index with the event's list)."""

    def __init__(self, ctx: Context, caller: NodeCredential) -> None:
        self.ctx, self.caller = ctx, caller
        self._refs: list[dict[str, Any]] | None = None

    def get(self) -> list[dict[str, Any]]:
        if self._refs is None:
            caller = self.caller
            self._refs = node_secrets.granted_refs(self.ctx, caller.project_id, caller.node_id, caller.labels)
        return self._refs


def _as_delivered(ctx: Context, caller: NodeCredential, event: NodeEvent | FeedEvent, refs: _SecretRefs) -> NodeEvent:
    if isinstance(event, NodeEvent):
        return event
    if event.event_type == SECRETS_UPDATED:
        delivered = event.for_node(caller.node_id)
        return delivered.model_copy(update={"payload": {**delivered.payload, "secret_refs": refs.get()}})
    psk = None
    if event.psk_peer is not None and caller.project_id:
        psk = pair_psk(
            secrets.mesh_key(),
            caller.project_id,
            (caller.node_id, caller.key_version),
            (event.psk_peer.peer_id, event.psk_peer.key_version),
        )
    return event.for_node(caller.node_id, psk)


def node_state(ctx: Context, node: Node) -> dict[str, Any]:
    """The reconciliation view: the node's open invocations, the signing keys and the
    ``{key, version}`` of the secrets granted to it."""
    executions = [
        {
            "execution_id": a.execution_id,
            "action": a.action,
            "type": a.type,
            "parameters": a.parameters,
            "status": a.status.value,
            "requested_at": rfc3339(a.requested_at),
            "expires_at": rfc3339(a.expires_at),
        }
        for a in ctx.targets.node_assignments(node.id)
    ]
    return {
        "node_id": node.id,
        "executions": executions,
        # Never a keyring older than the last rotation: the agent replaces its trusted keys
        # with these, so a container's stale cache would make it drop the new key.
        "signing_keys": secrets.signing_keyring(at_least=ctx.signing.rotations()).public(ctx.clock.now()).model_dump(),
        "peers": mesh.peers_for(ctx, node.project_id, node.id, node.key_version),
        "policies": policies.node_policies(ctx, node.project_id, node.labels),
        "metadata": node.metadata,
        "data": node_data.node_entries(ctx, node.id),
        "secret_refs": node_secrets.granted_refs(ctx, node.project_id, node.id, node.labels),
        "generated_at": rfc3339(ctx.clock.now()),
    }
