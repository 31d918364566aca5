"""Events that concern many nodes (SPEC §18): written once to a feed (a project's, or the
deployment's), merged into each node's stream at delivery and filtered there per recipient
(docs/node-state-plane.md §3)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from orchestrator.clock import rfc3339
from orchestrator.domain.node_events import NodeEvent
from orchestrator.domain.selectors import parse_selector


class Audience(BaseModel):
    """Who of the feed's nodes an event concerns. No field set: every node of the feed.

    ``exclude_node`` is the node the event is about (it is not told about itself);
    ``node_ids``, ``selector`` (SPEC §7) and ``selectors`` widen each other: a node named, or
    whose labels the selector or any of the selectors match, is concerned; with none of them,
    every node but the excluded one. (``selectors``: a change of a grant concerns the nodes of
    the old and of the new selector, and a selector has no "or".)
    """

    model_config = ConfigDict(frozen=True)

    exclude_node: str | None = None
    node_ids: tuple[str, ...] | None = None
    selector: str | None = None
    selectors: tuple[str, ...] | None = None

    def concerns(self, node_id: str, labels: Mapping[str, str]) -> bool:
        if node_id == self.exclude_node:
            return False
        if self.node_ids is None and self.selector is None and self.selectors is None:
            return True
        if self.node_ids is not None and node_id in self.node_ids:
            return True
        wanted = ((self.selector,) if self.selector is not None else ()) + (self.selectors or ())
        return any(parse_selector(s).matches(labels) for s in wanted)


class PeerKeyRef(BaseModel):
    """The peer whose pair key a recipient gets filled in at delivery (``peer_added``,
    ``peer_key_rotated``): the key is derived per pair, never stored in the feed."""

    model_config = ConfigDict(frozen=True)

    peer_id: str
    key_version: int


class FeedEvent(BaseModel):
    """One event of a feed, stored unsigned, without any per-recipient secret."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: str
    event_type: str
    occurred_at: str
    payload: dict[str, Any]
    audience: Audience = Audience()
    psk_peer: PeerKeyRef | None = None

    @classmethod
    def new(
        cls,
        event_id: str,
        event_type: str,
        now: datetime,
        fields: dict[str, Any],
        *,
        audience: Audience | None = None,
        psk_peer: PeerKeyRef | None = None,
    ) -> FeedEvent:
        """An event whose payload is ``event_id``, ``occurred_at``, then ``fields``."""
        occurred_at = rfc3339(now)
        return cls(
            event_id=event_id,
            event_type=event_type,
            occurred_at=occurred_at,
            payload={"event_id": event_id, "occurred_at": occurred_at, **fields},
            audience=audience or Audience(),
            psk_peer=psk_peer,
        )

    def for_node(self, node_id: str, psk: str | None = None) -> NodeEvent:
        """The event as ``node_id`` receives it, with its pair key filled in when it carries one."""
        payload = dict(self.payload)
        if self.psk_peer is not None:
            payload["psk"] = psk
        return NodeEvent(
            event_id=self.event_id,
            event_type=self.event_type,
            node_id=node_id,
            occurred_at=self.occurred_at,
            payload=payload,
        )
