"""Helpers for the node-facing routes."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from orchestrator import secrets
from orchestrator.domain import callback_tokens
from orchestrator.domain.credentials import secret_hash
from orchestrator.errors import InvalidCallbackToken, NskRevoked
from orchestrator.http.api import bearer_token
from orchestrator.http.node_auth import authenticate_node
from orchestrator.services.callbacks import Reporter
from orchestrator.services.context import Context
from orchestrator.store.table import Item


def authenticated_node(app: APIGatewayRestResolver, ctx: Context, node_id: str) -> Item:
    """The calling node's item, authenticated by its NSK bearer (401/403 otherwise)."""
    return authenticate_node(ctx.nodes, bearer_token(app), node_id)


def registered_for_token(ctx: Context, node_id: str) -> None:
    """A callback token is void once its node is deregistered (401 ``invalid_callback_token``)."""
    item = ctx.nodes.get_node_credential(node_id)
    if item is None or item.get("status") != "active":
        raise InvalidCallbackToken("The callback token's node is deregistered.")


def callback_reporter(app: APIGatewayRestResolver, ctx: Context, node_id: str, execution_id: str) -> Reporter:
    """Who reports for the (node, execution) target: any caller holding the invocation's
    callback token (verified here, by its signature: no read), or the node by its NSK, which
    the report's own conditional write checks against the target's copy of the node's key
    hash, falling back to the node item (:class:`~orchestrator.services.callbacks.Reporter`).
    A missing key is refused here, before anything else."""
    token = bearer_token(app)
    if token is not None and callback_tokens.is_callback_token(token):
        callback_tokens.verify(token, execution_id, node_id, ctx.clock.now(), secrets.callback_key())
        return Reporter.for_callback_token(lambda: registered_for_token(ctx, node_id))
    if not token:
        raise NskRevoked("A node secret key is required as Authorization: Bearer.")
    return Reporter(
        actor=f"node:{node_id}",
        presented=secret_hash(token),
        check=lambda: authenticate_node(ctx.nodes, token, node_id, credential_only=True),
    )
