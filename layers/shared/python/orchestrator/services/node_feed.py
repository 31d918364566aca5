"""What a node pulls: its event stream (SSE, signed at delivery) and its state (SPEC §11, §5).

Events are stored unsigned; each delivery signs a fresh envelope (new
``issued_at`` and nonce), so a node that reconnects after a while still gets
events its verifier accepts (they reject envelopes older than 5 minutes).
Replays after ``Last-Event-ID`` resend only what follows that id; without it,
what the node has not been sent yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orchestrator import secrets
from orchestrator.clock import rfc3339
from orchestrator.domain.credentials import NodeCredential
from orchestrator.domain.models import Node
from orchestrator.events.envelope import envelope_json, new_nonce, sign_envelope, sse_message, sse_retry
from orchestrator.services.context import Context

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
    hint."""
    node_id = caller.node_id
    after = last_event_id or caller.events_delivered_through
    deadline = time.monotonic() + hold_seconds
    events = ctx.node_events.after(node_id, after, MAX_EVENTS_PER_RESPONSE)
    while not events and time.monotonic() < deadline:
        sleep(POLL_INTERVAL_SECONDS)
        events = ctx.node_events.after(node_id, after, MAX_EVENTS_PER_RESPONSE)
    key = secrets.signing_key() if events else None
    # A comment first: every held response carries a byte within the hold (at most 25 s,
    # under the agent's 30 s request timeout and 90 s idle limit), events or not.
    parts = [SSE_KEEP_ALIVE]
    for event in events:
        assert key is not None
        envelope = sign_envelope(
            key,
            event_type=event.event_type,
            event_id=event.event_id,
            payload=event.payload,
            issued_at=ctx.clock.now(),
            nonce=new_nonce(),
        )
        parts.append(sse_message(event.event_id, event.event_type, envelope_json(envelope)))
    if events:
        ctx.nodes.mark_events_delivered(node_id, events[-1].event_id)
    parts.append(sse_retry(RETRY_MILLISECONDS))
    return "".join(parts)


def node_state(ctx: Context, node: Node) -> dict[str, Any]:
    """The reconciliation view: the node's open invocations and the signing keys."""
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
        "signing_keys": {"current": secrets.signing_public_key_b64(), "previous": None, "transition_expires": None},
        "peers": [],
        "policies": [],
        "metadata": node.metadata,
        "data": [],
        "secret_refs": [],
        "generated_at": rfc3339(ctx.clock.now()),
    }
