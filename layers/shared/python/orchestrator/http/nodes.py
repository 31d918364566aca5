"""Helpers for the node-facing routes."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from orchestrator.http.api import bearer_token
from orchestrator.http.node_auth import authenticate_node
from orchestrator.services.context import Context
from orchestrator.store.table import Item


def authenticated_node(app: APIGatewayRestResolver, ctx: Context, node_id: str) -> Item:
    """The calling node's item, authenticated by its NSK bearer (401/403 otherwise)."""
    return authenticate_node(ctx.nodes, bearer_token(app), node_id)
