"""Node liveness as shown to operators."""

from __future__ import annotations

from datetime import datetime, timedelta

from orchestrator.domain.models import Node

HEARTBEAT_INTERVAL = timedelta(seconds=30)
STALE_AFTER = 3 * HEARTBEAT_INTERVAL


def node_liveness(node: Node, now: datetime) -> str:
    """``deregistered``; ``online`` if heard from within three heartbeat intervals; else ``stale``."""
    if not node.is_active:
        return "deregistered"
    last_seen = node.last_heartbeat_at or node.registered_at
    return "online" if now - last_seen <= STALE_AFTER else "stale"
