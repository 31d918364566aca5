"""The REST resolver every API function uses, with one error mapper.

A handler module does::

    app = rest_app()

    @app.post("/v1/...")
    def operation() -> Response[str]: ...

    @api_entrypoint
    def lambda_handler(event, context):
        return app.resolve(event, context)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from pydantic import BaseModel, ValidationError

from orchestrator.errors import InvalidBody, OrchestratorError, RouteNotFound, Unauthenticated
from orchestrator.http.problem import problem_response
from orchestrator.http.request_body import decoded_body, json_document, raw_body
from orchestrator.observability import count, logger
from orchestrator.settings import get_settings

JSON = "application/json"
COMPRESS_ABOVE_BYTES = 1024
CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

M = TypeVar("M", bound=BaseModel)


class InternalError(OrchestratorError):
    """Answer for anything unexpected: generic, no internals."""

    status, code, title = 500, "internal_error", "Internal Server Error"


def correlation_id(app: APIGatewayRestResolver) -> str:
    """The caller's ``X-Correlation-Id`` when well-formed, else API Gateway's request id."""
    supplied = app.current_event.headers.get("x-correlation-id") or app.current_event.headers.get("X-Correlation-Id")
    if supplied and CORRELATION_ID.fullmatch(supplied):
        return supplied
    request_id = app.current_event.request_context.request_id
    return request_id or "unknown"


def request_path(app: APIGatewayRestResolver) -> str:
    """The path as the client sent it (a Problem's ``instance``): API Gateway's
    ``requestContext.path`` holds the stage prefix exactly when the client's URL did (the
    execute-api host), and none behind a custom domain or locally."""
    sent = (app.current_event.get("requestContext") or {}).get("path")
    return sent if isinstance(sent, str) and sent else app.current_event.path


def rest_app() -> APIGatewayRestResolver:
    """A resolver with correlation ids, the body-size limit and Problem+JSON errors."""
    app = APIGatewayRestResolver()

    def correlate(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        cid = correlation_id(app)
        logger.set_correlation_id(cid)
        count("Requests")
        event = app.current_event
        wire = raw_body(event.body, is_base64_encoded=bool(event.is_base64_encoded))
        if wire:
            content = decoded_body(wire, event.headers.get("content-encoding"), get_settings().max_body_bytes)
            app.context["request_body"] = content  # cleared by the resolver after each event
        response = next_middleware(app)
        response.headers["X-Correlation-Id"] = cid
        compress_if_worth_it(response)
        return response

    app.use(middlewares=[correlate])

    @app.exception_handler(OrchestratorError)  # type: ignore[untyped-decorator]
    def handle_domain_error(error: OrchestratorError) -> Response[str]:
        count("ServerErrors" if error.status >= 500 else "ClientErrors")
        if error.status >= 500:
            logger.warning("request failed", code=error.problem_code, status=error.status)
        return problem_response(error, instance=request_path(app), correlation_id=correlation_id(app))

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def handle_unexpected(error: Exception) -> Response[str]:
        count("ServerErrors")
        logger.exception("unexpected error")
        return problem_response(
            InternalError("The request could not be completed."),
            instance=request_path(app),
            correlation_id=correlation_id(app),
        )

    @app.not_found
    def handle_not_found(_: Exception) -> Response[str]:
        return problem_response(
            RouteNotFound(f"No route for {app.current_event.http_method} {app.current_event.path}."),
            instance=request_path(app),
            correlation_id=correlation_id(app),
        )

    return app


def compress_if_worth_it(response: Response[Any]) -> None:
    """Gzip a successful JSON answer over 1 KiB for a client that accepts gzip (Powertools
    compresses it when ``Accept-Encoding`` names gzip). Problems stay plain: the agent reads
    error bodies raw, without inflating them."""
    body = response.body
    if (
        200 <= response.status_code < 300
        and isinstance(body, str)
        and len(body) > COMPRESS_ABOVE_BYTES
        and response.content_type == JSON
    ):
        response.compress = True
        response.headers["Vary"] = "Accept-Encoding"


def parse_body(app: APIGatewayRestResolver, model: type[M], *, empty_ok: bool = False) -> M:
    """The JSON body (decoded by the middleware, :mod:`orchestrator.http.request_body`) as
    ``model``; malformed JSON or a schema mismatch is 400 ``invalid_body``."""
    content: bytes = app.context.get("request_body", b"")
    if not content.strip():
        if empty_ok:
            return model.model_validate({})
        raise InvalidBody("A JSON object body is required.")
    document = json_document(content)
    if not isinstance(document, dict):
        raise InvalidBody("The body must be a JSON object.")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in error["loc"]) or "(body)", "message": error["msg"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidBody("The body does not match the schema.", errors=errors) from exc


def json_response(status: int, payload: Any) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=json.dumps(payload, separators=(",", ":")))


def operator_subject(app: APIGatewayRestResolver) -> str:
    """The operator identified by the API's JWT authorizer (principal id)."""
    authorizer: dict[str, Any] = app.current_event.request_context.authorizer.raw_event or {}
    subject = authorizer.get("principalId") or authorizer.get("subject")
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("A valid operator bearer token is required.")
    return subject


def bearer_token(app: APIGatewayRestResolver) -> str | None:
    header = app.current_event.headers.get("authorization") or app.current_event.headers.get("Authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def query_param(app: APIGatewayRestResolver, name: str) -> str | None:
    value = app.current_event.get_query_string_value(name)
    return value if value is None else str(value)


Handler = Callable[..., Response[Any]]
