"""Helpers for the node-facing routes."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from orchestrator import secrets
from orchestrator.domain import callback_tokens
from orchestrator.domain.credentials import NodeCredential
from orchestrator.domain.models import Node
from orchestrator.errors import InvalidCallbackToken
from orchestrator.http.api import bearer_token
from orchestrator.http.node_auth import authenticate_node, authenticate_node_record
from orchestrator.services.callbacks import Reporter
from orchestrator.services.context import Context


def authenticated_node(app: APIGatewayRestResolver, ctx: Context, node_id: str) -> NodeCredential:
    """The calling node, authenticated by its NSK bearer (401/403 otherwise)."""
    return authenticate_node(ctx.nodes, bearer_token(app), node_id)


def authenticated_node_record(app: APIGatewayRestResolver, ctx: Context, node_id: str) -> tuple[Node, NodeCredential]:
    """The calling node's record and credential, from one read (401/403 otherwise)."""
    return authenticate_node_record(ctx.nodes, bearer_token(app), node_id)


def registered_for_token(ctx: Context, node_id: str) -> None:
    """A callback token is void once its node is deregistered (401 ``invalid_callback_token``)."""
    credential = ctx.nodes.get_credential(node_id)
    if credential is None or not credential.active:
        raise InvalidCallbackToken("The callback token's node is deregistered.")


def callback_reporter(app: APIGatewayRestResolver, ctx: Context, node_id: str, execution_id: str) -> Reporter:
    """Who reports for the (node, execution) target, authenticated before anything of the
    report is looked at: a callback token (its signature, then its node still registered) or
    the node's own NSK. Either way one strongly consistent read of the node's credential:
    a key or token revoked before the report is refused (401/403), whatever the body."""
    token = bearer_token(app)
    if token is not None and callback_tokens.is_callback_token(token):
        callback_tokens.verify(token, execution_id, node_id, ctx.clock.now(), secrets.callback_key())
        registered_for_token(ctx, node_id)
        return Reporter(actor="callback_token")
    authenticate_node(ctx.nodes, token, node_id)
    return Reporter(actor=f"node:{node_id}")
