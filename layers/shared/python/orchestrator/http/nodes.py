"""Helpers for the node-facing routes."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from orchestrator.http import callback_tokens
from orchestrator.http.api import bearer_token
from orchestrator.http.node_auth import authenticate_node
from orchestrator.services.context import Context
from orchestrator.store.table import Item


def authenticated_node(app: APIGatewayRestResolver, ctx: Context, node_id: str) -> Item:
    """The calling node's item, authenticated by its NSK bearer (401/403 otherwise)."""
    return authenticate_node(ctx.nodes, bearer_token(app), node_id)


def authenticated_reporter(app: APIGatewayRestResolver, ctx: Context, node_id: str, execution_id: str) -> str:
    """Who reports for the (node, execution) target: the node by its NSK, or any caller holding
    the invocation's callback token. Returns the actor recorded in the audit trail."""
    token = bearer_token(app)
    if token is not None and callback_tokens.is_callback_token(token):
        callback_tokens.verify(token, execution_id, node_id, ctx.clock.now())
        return "callback_token"
    authenticate_node(ctx.nodes, token, node_id, credential_only=True)
    return f"node:{node_id}"
