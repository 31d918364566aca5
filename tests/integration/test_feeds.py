"""Feeds: events written once for many nodes, merged into each node's stream at delivery and
filtered per recipient (docs/node-state-plane.md §3)."""

from __future__ import annotations

import json
import re
from typing import Any

from orchestrator import secrets
from orchestrator.domain.feed import Audience, FeedEvent, PeerKeyRef
from orchestrator.domain.mesh import pair_psk
from orchestrator.domain.node_events import NodeEvent
from orchestrator.services.context import Context, context_for
from orchestrator.store.feeds import DEPLOYMENT_FEED, project_feed
from tests.integration.conftest import Api, RegisteredNode, Tenant, register_node


def _frames(text: str) -> list[dict[str, str]]:
    frames, fields = [], {}
    for line in re.split(r"\r\n|\r|\n", text):
        if line == "":
            if fields:
                frames.append(fields)
            fields = {}
            continue
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")
    return [f for f in frames if "event" in f]


def stream(api: Api, node: RegisteredNode, last_event_id: str | None = None) -> list[dict[str, Any]]:
    """The node's delivered events as (type, signed payload) from one stream request."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    response = api.request("GET", f"/v1/nodes/{node.id}/events", token=node.nsk, headers=headers)
    assert response.status_code == 200, response.text
    return [{"id": f["id"], "type": f["event"], **json.loads(f["data"])} for f in _frames(response.text)]


def drain(api: Api, *nodes: RegisteredNode) -> str | None:
    """Read what the nodes were sent so far (the mesh's ``peer_added`` of their registrations);
    the last event id read."""
    last = None
    for node in nodes:
        events = stream(api, node)
        last = events[-1]["id"] if events else last
    return last


def publish(ctx: Context, feed: str, event_type: str, fields: dict[str, Any], **options: Any) -> str:
    event_id = ctx.ids.new_id()
    ctx.feeds.append(feed, FeedEvent.new(event_id, event_type, ctx.clock.now(), fields, **options), ctx.clock.now())
    return event_id


def test_a_project_feed_event_reaches_every_node_but_the_one_it_is_about(api: Api, tenant: Tenant) -> None:
    a, b, c = (register_node(api, tenant, f"feed-{i}") for i in range(3))
    drain(api, a, b, c)
    ctx = context_for("test")
    feed = project_feed(tenant.project_id)
    publish(ctx, feed, "peer_removed", {"peer_id": a.id}, audience=Audience(exclude_node=a.id))

    assert [e["type"] for e in stream(api, a)] == []
    for node in (b, c):
        (event,) = stream(api, node)
        assert event["type"] == "peer_removed"
        assert event["payload"]["peer_id"] == a.id


def test_selector_and_node_id_audiences_reach_only_the_nodes_they_name(api: Api, tenant: Tenant) -> None:
    web = register_node(api, tenant, "web-1", metadata={"role": "web"})
    db = register_node(api, tenant, "db-1", metadata={"role": "db"})
    other = register_node(api, tenant, "batch-1", metadata={"role": "batch"})
    drain(api, web, db, other)
    ctx = context_for("test")
    feed = project_feed(tenant.project_id)
    publish(ctx, feed, "policy_updated", {"n": 1}, audience=Audience(selector="role=web"))
    publish(ctx, feed, "node_secrets_updated", {"n": 2}, audience=Audience(node_ids=(db.id,)))

    assert [e["payload"]["n"] for e in stream(api, web)] == [1]
    assert [e["payload"]["n"] for e in stream(api, db)] == [2]
    assert stream(api, other) == []


def test_own_events_and_feed_events_arrive_merged_in_id_order(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "merge-1")
    ctx = context_for("test")
    order = []
    for i in range(6):
        if i % 2:
            order.append(publish(ctx, project_feed(tenant.project_id), "policy_updated", {"i": i}))
        else:
            event_id = ctx.ids.new_id()
            own = NodeEvent.new(event_id, "rotate_keys", node.id, ctx.clock.now(), {"i": i})
            ctx.node_events.append([own], ctx.clock.now())
            order.append(event_id)
    delivered = stream(api, node)
    assert [e["id"] for e in delivered] == order
    assert [e["payload"]["i"] for e in delivered] == list(range(6))
    # Delivered once: the cursor moved past both partitions.
    assert stream(api, node) == []


def test_pages_of_events_for_other_nodes_do_not_stall_a_stream(api: Api, tenant: Tenant) -> None:
    """More than a page of feed events that concern others, then one for this node: it gets
    through in one request, and a reconnect with its Last-Event-ID finds nothing more."""
    node = register_node(api, tenant, "patient-1")
    busy = register_node(api, tenant, "busy-1")
    start = drain(api, node, busy) or "0"  # whatever the nodes were sent before
    ctx = context_for("test")
    feed = project_feed(tenant.project_id)
    for i in range(230):
        publish(ctx, feed, "node_secrets_updated", {"i": i}, audience=Audience(node_ids=(busy.id,)))
    mine = publish(ctx, feed, "node_secrets_updated", {"i": "mine"}, audience=Audience(node_ids=(node.id,)))

    (event,) = stream(api, node, last_event_id=start)
    assert event["id"] == mine
    assert stream(api, node, last_event_id=mine) == []


def test_a_pair_key_is_filled_in_per_recipient_and_never_stored(api: Api, tenant: Tenant) -> None:
    new, a, b = (register_node(api, tenant, f"psk-{i}") for i in range(3))
    drain(api, new, a, b)
    ctx = context_for("test")
    publish(
        ctx,
        project_feed(tenant.project_id),
        "peer_added",
        {"id": new.id},
        audience=Audience(exclude_node=new.id),
        psk_peer=PeerKeyRef(peer_id=new.id, key_version=0),
    )
    key = secrets.mesh_key()
    seen = set()
    for node in (a, b):
        (event,) = stream(api, node)
        expected = pair_psk(key, tenant.project_id, (node.id, 0), (new.id, 0))
        assert event["payload"]["psk"] == expected
        seen.add(expected)
    assert len(seen) == 2  # each pair has its own key
    assert not any(psk in json.dumps(api.table_items(), default=str) for psk in seen)


def test_the_deployment_feed_reaches_nodes_of_every_project(api: Api, tenant: Tenant) -> None:
    node = register_node(api, tenant, "deploy-1")
    ctx = context_for("test")
    publish(ctx, DEPLOYMENT_FEED, "signing_key_rotated", {"public_key": "k"})
    (event,) = stream(api, node)
    assert event["type"] == "signing_key_rotated"
