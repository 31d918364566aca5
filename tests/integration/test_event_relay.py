"""The event relay's hub against the template's table (in-process moto): a stream opens the
full way (credential read, replay) or from memory (no AWS request), live events from the
event index reach the streams they concern once, and a deregistered node is cut off."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from orchestrator import secrets
from orchestrator.domain.event_index import floor_id
from orchestrator.domain.feed import Audience, FeedEvent
from orchestrator.domain.node_events import NodeEvent
from orchestrator.errors import NskNodeMismatch, NskRevoked
from orchestrator.events.envelope import verify_envelope
from orchestrator.relay.hub import Closed, Hub, Stream
from orchestrator.relay.poller import IndexPoller
from orchestrator.services.context import Context, context_for
from orchestrator.store.event_index import EventIndexStore, IndexedEvent
from orchestrator.store.feeds import DEPLOYMENT_FEED, project_feed
from tests.integration.conftest import Api, RegisteredNode, Tenant, register_node


@pytest.fixture
def ctx(api: Api) -> Context:
    return context_for("test")


@pytest.fixture
def calls(ctx: Context) -> Iterator[list[str]]:
    """Every DynamoDB operation the library's client makes while the test runs."""
    made: list[str] = []

    def record(model: Any, **_: Any) -> None:
        made.append(model.name)

    events = ctx.table.client.meta.events
    events.register("before-call.dynamodb", record)
    yield made
    events.unregister("before-call.dynamodb", record)


HORIZON = datetime.now(UTC) - timedelta(seconds=5)  # one index reader's, for every test: no gap


def horizon() -> datetime:
    """Where the index has been read without a gap since (before any event of these tests)."""
    return HORIZON


def frames(stream: Stream) -> list[dict[str, Any]]:
    """The SSE messages queued on ``stream`` (taken off it), decoded."""
    text = ""
    while not stream.queue.empty():
        item = stream.queue.get_nowait()
        if isinstance(item, Closed):
            text += "\n: closed\n\n"
            continue
        text += item
    found = []
    for block in re.split(r"\n\n", text):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            found.append({"id": fields.get("id"), "type": fields["event"], "data": fields["data"]})
        elif block.strip() == ": closed":
            found.append({"type": "closed"})
    return found


def verified(frame: dict[str, Any]) -> dict[str, Any]:
    """The frame's envelope, checked against the deployment's current signing key."""
    raw = base64.b64decode(secrets.signing_keyring().public(datetime.now(UTC)).current)
    envelope = json.loads(frame["data"])
    assert verify_envelope(Ed25519PublicKey.from_public_bytes(raw), frame["data"])
    assert envelope["event_id"] == (frame["id"] or envelope["event_id"]) and envelope["event_type"] == frame["type"]
    return envelope


def node_event(ctx: Context, node: RegisteredNode, event_type: str = "action_request") -> IndexedEvent:
    event_id = ctx.ids.new_id()
    event = NodeEvent.new(event_id, event_type, node.id, ctx.clock.now(), {"n": 1})
    ctx.node_events.append([event], ctx.clock.now())
    return IndexedEvent(event)


def feed_event(ctx: Context, tenant: Tenant, event_type: str, fields: dict[str, Any], **options: Any) -> IndexedEvent:
    feed = project_feed(tenant.project_id)
    event = FeedEvent.new(ctx.ids.new_id(), event_type, ctx.clock.now(), fields, **options)
    ctx.feeds.append(feed, event, ctx.clock.now())
    return IndexedEvent(event, feed=feed)


def test_a_stream_opens_with_what_the_node_was_not_sent_signed_as_on_the_lambda_path(
    api: Api, tenant: Tenant, ctx: Context
) -> None:
    node = register_node(api, tenant, "relay-replay")
    written = node_event(ctx, node)

    async def scenario() -> list[dict[str, Any]]:
        hub = Hub(ctx)
        stream = await hub.open(node.id, node.nsk, None)
        assert hub.counters.replays == 1
        return frames(stream)

    sent = asyncio.run(scenario())
    assert [f["id"] for f in sent][-1] == written.event_id
    assert verified(sent[-1])["payload"]["n"] == 1


def test_a_replay_that_reaches_the_end_of_every_source_reads_each_once(
    api: Api, tenant: Tenant, ctx: Context, calls: list[str]
) -> None:
    """A reconnect wave during a fan-out replays hundreds of nodes: each replay is one read of
    the node's events and of its two feeds, not a second round to learn there is nothing more."""
    node = register_node(api, tenant, "relay-one-round")
    written = node_event(ctx, node)

    async def scenario() -> list[dict[str, Any]]:
        hub = Hub(ctx)
        calls.clear()
        return frames(await hub.open(node.id, node.nsk, None))

    sent = asyncio.run(scenario())
    assert [f["id"] for f in sent] == [written.event_id]
    assert calls.count("Query") == 3  # the node's partition, its project's feed, the deployment's


def test_a_reconnect_with_nothing_new_opens_without_any_aws_request(
    api: Api, tenant: Tenant, ctx: Context, calls: list[str]
) -> None:
    node = register_node(api, tenant, "relay-fast")
    last = node_event(ctx, node).event_id

    async def scenario() -> Hub:
        hub = Hub(ctx)
        first = await hub.open(node.id, node.nsk, last)
        await hub.deliver([], horizon())
        hub.close(first)
        calls.clear()
        second = await hub.open(node.id, node.nsk, last)
        assert frames(second) == []
        return hub

    hub = asyncio.run(scenario())
    counters = hub.counters
    assert (counters.credential_reads, counters.replays, counters.opens_without_replay) == (1, 1, 1)
    assert calls == []


def test_an_event_after_the_last_event_id_sends_the_reconnect_the_full_way(
    api: Api, tenant: Tenant, ctx: Context
) -> None:
    node = register_node(api, tenant, "relay-missed")
    last = node_event(ctx, node).event_id

    async def scenario() -> tuple[Hub, list[dict[str, Any]]]:
        hub = Hub(ctx)
        hub.close(await hub.open(node.id, node.nsk, last))
        missed = node_event(ctx, node)  # written while the node was between two streams
        await hub.deliver([missed], horizon())
        again = await hub.open(node.id, node.nsk, last)
        return hub, frames(again)

    hub, sent = asyncio.run(scenario())
    assert (hub.counters.credential_reads, hub.counters.replays) == (1, 2)
    assert len(sent) == 1 and verified(sent[0])["event_type"] == "action_request"


async def queued_on_a_stream_that_ends(hub: Hub, ctx: Context, node: RegisteredNode) -> str:
    """A live event queued on the node's stream, which then ends (its id)."""
    stream = await hub.open(node.id, node.nsk, None)
    live = node_event(ctx, node)
    await hub.deliver([live], horizon())
    hub.close(stream)
    return live.event_id


def test_an_event_queued_on_a_stream_the_agent_was_ending_reaches_its_next_stream_without_an_id(
    api: Api, tenant: Tenant, ctx: Context
) -> None:
    # plexd cuts every stream after 30 s: an event queued just then never reaches the agent,
    # and an agent that had no event id yet reconnects without Last-Event-ID.
    node = register_node(api, tenant, "relay-cut")

    async def scenario() -> tuple[Hub, str, list[dict[str, Any]]]:
        hub = Hub(ctx)
        live_id = await queued_on_a_stream_that_ends(hub, ctx, node)
        again = await hub.open(node.id, node.nsk, None)
        return hub, live_id, frames(again)

    hub, live_id, sent = asyncio.run(scenario())
    assert live_id in [f["id"] for f in sent]
    assert hub.take_unwritten() == {}  # nothing confirmed: no delivery cursor stored


def test_the_delivery_cursor_is_what_the_agent_confirms_with_its_last_event_id(
    api: Api, tenant: Tenant, ctx: Context
) -> None:
    node = register_node(api, tenant, "relay-confirm")

    async def scenario() -> tuple[Hub, str, list[dict[str, Any]]]:
        hub = Hub(ctx)
        live_id = await queued_on_a_stream_that_ends(hub, ctx, node)
        hub.close(await hub.open(node.id, node.nsk, live_id))  # the agent says it got it
        restarted = await hub.open(node.id, node.nsk, None)  # a restarted agent: no id
        return hub, live_id, frames(restarted)

    hub, live_id, sent = asyncio.run(scenario())
    assert sent == []  # resumes after what it confirmed
    assert hub.take_unwritten() == {node.id: live_id}
    hub.write_cursors({node.id: live_id})
    assert ctx.nodes.get_credential(node.id).events_delivered_through == live_id  # type: ignore[union-attr]


def test_an_id_the_deployment_cannot_have_minted_never_moves_the_delivery_cursor(
    api: Api, tenant: Tenant, ctx: Context
) -> None:
    node = register_node(api, tenant, "relay-future")
    future = floor_id(datetime.now(UTC) + timedelta(hours=1))

    async def scenario() -> Hub:
        hub = Hub(ctx)
        hub.close(await hub.open(node.id, node.nsk, future))
        hub.close(await hub.open(node.id, node.nsk, "not-an-event-id"))
        return hub

    assert asyncio.run(scenario()).take_unwritten() == {}


def test_a_live_event_reaches_each_stream_of_its_node_once(api: Api, tenant: Tenant, ctx: Context) -> None:
    node, other = register_node(api, tenant, "relay-live"), register_node(api, tenant, "relay-other")

    async def scenario() -> tuple[Hub, list[list[dict[str, Any]]]]:
        hub = Hub(ctx)
        streams = [await hub.open(node.id, node.nsk, None) for _ in range(2)]
        bystander = await hub.open(other.id, other.nsk, None)
        for stream in [*streams, bystander]:
            frames(stream)  # what registration sent them
        live = node_event(ctx, node)
        await hub.deliver([live], horizon())
        await hub.deliver([live], horizon())  # the index showed it twice
        return hub, [frames(s) for s in [*streams, bystander]]

    hub, (first, second, bystander) = asyncio.run(scenario())
    assert len(first) == len(second) == 1
    assert first[0] == second[0]  # signed once for the node's streams (one is usually a dead one)
    verified(first[0])
    assert bystander == []
    assert hub.counters.events_delivered >= 2


def test_an_event_that_shows_late_is_still_sent_and_counted_late(api: Api, tenant: Tenant, ctx: Context) -> None:
    node = register_node(api, tenant, "relay-late")

    async def scenario() -> tuple[Hub, list[dict[str, Any]]]:
        hub = Hub(ctx)
        stream = await hub.open(node.id, node.nsk, None)
        frames(stream)
        older, newer = node_event(ctx, node), node_event(ctx, node)
        await hub.deliver([newer], horizon())
        await hub.deliver([older], horizon())
        return hub, frames(stream)

    hub, sent = asyncio.run(scenario())
    assert len(sent) == 2
    # The late one carries no id: the agent's Last-Event-ID stays at the newer event's.
    assert sent[0]["id"] is not None and sent[1]["id"] is None
    assert verified(sent[1])["event_id"] < sent[0]["id"]
    assert hub.counters.late_events == 1


def test_a_key_that_is_not_the_cached_one_is_checked_again_and_refused(api: Api, tenant: Tenant, ctx: Context) -> None:
    node, other = register_node(api, tenant, "relay-auth"), register_node(api, tenant, "relay-auth-2")

    async def scenario() -> None:
        hub = Hub(ctx)
        hub.close(await hub.open(node.id, node.nsk, None))
        with pytest.raises(NskRevoked):
            await hub.open(node.id, "not-the-key", None)
        with pytest.raises(NskNodeMismatch):
            await hub.open(node.id, other.nsk, None)
        with pytest.raises(NskRevoked):
            await hub.open(node.id, None, None)
        assert hub.counters.refused == 3

    asyncio.run(scenario())


def test_a_feed_event_reaches_only_the_streams_it_concerns(api: Api, tenant: Tenant, ctx: Context) -> None:
    a, b = register_node(api, tenant, "relay-feed-a"), register_node(api, tenant, "relay-feed-b")

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        hub = Hub(ctx)
        stream_a, stream_b = await hub.open(a.id, a.nsk, None), await hub.open(b.id, b.nsk, None)
        frames(stream_a), frames(stream_b)
        event = feed_event(ctx, tenant, "policy_updated", {"policy_id": "p"}, audience=Audience(node_ids=(a.id,)))
        await hub.deliver([event], horizon())
        return frames(stream_a), frames(stream_b)

    to_a, to_b = asyncio.run(scenario())
    assert [verified(f)["event_type"] for f in to_a] == ["policy_updated"]
    assert to_b == []


def test_a_deregistered_node_is_cut_off_and_its_key_refused(api: Api, tenant: Tenant, ctx: Context) -> None:
    node, peer = register_node(api, tenant, "relay-gone"), register_node(api, tenant, "relay-peer")
    poller = IndexPoller(EventIndexStore(ctx.table), ctx.settings.event_index_shards)

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        hub = Hub(ctx)
        gone, staying = await hub.open(node.id, node.nsk, None), await hub.open(peer.id, peer.nsk, None)
        frames(gone), frames(staying)
        poller.poll()
        answer = api.request("POST", f"/v1/nodes/{node.id}/deregister", token=node.nsk)
        assert answer.status_code in (200, 204), answer.text
        await hub.deliver(poller.poll(), poller.horizon)  # the deregistration's peer_removed
        with pytest.raises(NskRevoked):
            await hub.open(node.id, node.nsk, None)
        return frames(gone), frames(staying)

    to_gone, to_peer = asyncio.run(scenario())
    assert to_gone[-1] == {"type": "closed"}
    assert "peer_removed" in [verified(f)["event_type"] for f in to_peer]


def test_the_poller_reads_what_the_stores_write(api: Api, tenant: Tenant, ctx: Context) -> None:
    node = register_node(api, tenant, "relay-index")
    assert ctx.settings.event_index_shards > 0
    poller = IndexPoller(EventIndexStore(ctx.table), ctx.settings.event_index_shards)
    poller.poll()
    own = node_event(ctx, node)
    shared = feed_event(ctx, tenant, "policy_updated", {"policy_id": "p"})
    found = poller.poll()
    assert [(i.event_id, i.feed) for i in found if i.event_id in (own.event_id, shared.event_id)] == [
        (own.event_id, None),
        (shared.event_id, project_feed(tenant.project_id)),
    ]
    assert isinstance(found[-1].event, FeedEvent)


def test_a_gap_in_reading_the_index_has_every_key_checked_again(
    api: Api, tenant: Tenant, ctx: Context, calls: list[str]
) -> None:
    node = register_node(api, tenant, "relay-gap")

    async def scenario() -> Hub:
        hub = Hub(ctx)
        await hub.deliver([], horizon())
        hub.close(await hub.open(node.id, node.nsk, None))
        await hub.deliver([], horizon() + timedelta(seconds=30))  # polls failed meanwhile
        calls.clear()
        hub.close(await hub.open(node.id, node.nsk, None))
        return hub

    hub = asyncio.run(scenario())
    assert hub.counters.credential_reads == 2
    assert "GetItem" in calls


def test_an_event_that_fails_to_reach_its_streams_ends_them_and_is_replayed(
    api: Api, tenant: Tenant, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = register_node(api, tenant, "relay-fail")

    async def scenario() -> tuple[Hub, list[dict[str, Any]], list[dict[str, Any]]]:
        hub = Hub(ctx)
        await hub.deliver([], horizon())
        stream = await hub.open(node.id, node.nsk, None)
        before = frames(stream)
        last = before[-1]["id"] if before else None
        live = node_event(ctx, node)
        with monkeypatch.context() as patched:
            patched.setattr(secrets, "signing_keyring", _unavailable)
            await hub.deliver([live], horizon())
        ended = frames(stream)
        hub.close(stream)
        again = await hub.open(node.id, node.nsk, last)  # the agent reconnects from its last id
        return hub, ended, frames(again)

    hub, ended, replayed = asyncio.run(scenario())
    assert ended == [{"type": "closed"}]
    assert [verified(f)["event_type"] for f in replayed] == ["action_request"]
    assert hub.counters.replays == 2


def _unavailable(**_: Any) -> Any:
    raise RuntimeError("the secret store is unavailable")


def test_a_gap_in_reading_the_index_ends_every_stream(api: Api, tenant: Tenant, ctx: Context) -> None:
    node = register_node(api, tenant, "relay-gap-streams")

    async def scenario() -> list[dict[str, Any]]:
        hub = Hub(ctx)
        await hub.deliver([], horizon())
        stream = await hub.open(node.id, node.nsk, None)
        frames(stream)
        await hub.deliver([], horizon() + timedelta(seconds=30))
        return frames(stream)

    assert asyncio.run(scenario()) == [{"type": "closed"}]


def test_a_mesh_key_rotation_has_the_node_read_again(api: Api, tenant: Tenant, ctx: Context) -> None:
    node, peer = register_node(api, tenant, "relay-rotates"), register_node(api, tenant, "relay-rotates-peer")

    async def scenario() -> tuple[Hub, list[dict[str, Any]]]:
        hub = Hub(ctx)
        await hub.deliver([], horizon())
        rotating = await hub.open(node.id, node.nsk, None)
        frames(rotating)
        rotated = feed_event(
            ctx, tenant, "peer_key_rotated", {"peer_id": node.id}, audience=Audience(exclude_node=node.id)
        )
        await hub.deliver([rotated], horizon())
        hub.close(await hub.open(node.id, node.nsk, None))
        return hub, frames(rotating)

    hub, to_rotating = asyncio.run(scenario())
    assert to_rotating == [{"type": "closed"}]
    assert hub.counters.credential_reads == 2
    assert peer.id


def test_a_backlog_longer_than_one_opening_ends_the_stream_after_it(
    api: Api, tenant: Tenant, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orchestrator.relay.hub as hub_module

    node = register_node(api, tenant, "relay-backlog")
    written = [node_event(ctx, node).event_id for _ in range(150)]
    monkeypatch.setattr(hub_module, "MAX_REPLAY_ROUNDS", 1)

    async def scenario() -> list[dict[str, Any]]:
        hub = Hub(ctx)
        return frames(await hub.open(node.id, node.nsk, None))

    sent = asyncio.run(scenario())
    assert sent[-1] == {"type": "closed"}
    assert [f["id"] for f in sent[:-1]] == written[:100]  # the rest on the next opening


def test_a_deployment_event_past_the_first_page_is_replayed(api: Api, tenant: Tenant, ctx: Context) -> None:
    node = register_node(api, tenant, "relay-deep")
    for _ in range(110):
        node_event(ctx, node)
    rotation = ctx.ids.new_id()
    ctx.feeds.append(
        DEPLOYMENT_FEED,
        FeedEvent.new(rotation, "signing_key_rotated", ctx.clock.now(), {"public_key": "k"}),
        ctx.clock.now(),
    )
    for _ in range(20):
        node_event(ctx, node)

    async def scenario() -> list[dict[str, Any]]:
        return frames(await Hub(ctx).open(node.id, node.nsk, None))

    sent = asyncio.run(scenario())
    assert rotation in [f["id"] for f in sent]
    assert len(sent) >= 131


def test_a_relabelled_node_is_read_again_and_gets_what_its_new_labels_concern(
    api: Api, tenant: Tenant, ctx: Context
) -> None:
    node = register_node(api, tenant, "relay-relabel")
    poller = IndexPoller(EventIndexStore(ctx.table), ctx.settings.event_index_shards)

    async def scenario() -> tuple[Hub, list[dict[str, Any]], list[dict[str, Any]]]:
        hub = Hub(ctx)
        await hub.deliver(poller.poll(), poller.horizon)
        stream = await hub.open(node.id, node.nsk, None)
        frames(stream)
        answer = api.request(
            "PATCH",
            f"/v1/projects/{tenant.project_id}/nodes/{node.id}",
            json_body={"labels": {"role": "web"}},
            token=tenant.admin_token,
        )
        assert answer.status_code == 200, answer.text
        feed_event(ctx, tenant, "policy_updated", {"policy_id": "p"}, audience=Audience(selector="role=web"))
        await hub.deliver(poller.poll(), poller.horizon)  # the label change, then the event
        ended = frames(stream)
        again = await hub.open(node.id, node.nsk, None)
        return hub, ended, frames(again)

    hub, ended, again = asyncio.run(scenario())
    assert ended == [{"type": "closed"}]  # it held a stream under its old labels
    assert hub.counters.credential_reads == 2
    assert [verified(f)["event_type"] for f in again] == ["policy_updated"]
