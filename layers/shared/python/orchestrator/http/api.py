"""The REST resolver every API function uses: the body decoded, validated by Powertools,
and one error mapper.

A handler module does::

    def checked(app, **path) -> Context:    # what the operation looks at before its body
        return context_for("operation")

    app = rest_app(before_body=checked)

    @app.post("/v1/...")
    def operation(request: Annotated[SomeRequest, Body()]) -> Response[str]:
        ctx = checked(app)
        ...

    @api_entrypoint
    def lambda_handler(event, context):
        return app.resolve(event, context)

How a request is read (Powertools' validation runs before any middleware or handler):

1. ``RestResolver.resolve`` decodes the body as the client sent it
   (:mod:`orchestrator.http.request_body`: base64, ``Content-Encoding``, the size limit) and
   hands the resolver a plain text body with ``Content-Type: application/json``. A body that
   cannot be decoded (413, 415, a corrupt gzip stream) is answered before anything else, as a
   Problem, by the first middleware or by the validation handler below.
2. Powertools' request validation reads it through :meth:`RestResolver.json_object`: strict
   JSON that DynamoDB can store, and an object; then the route's ``Body()`` model.
3. A refusal of 2 (``RequestValidationError``) is answered by one exception handler: it first
   runs the operation's ``before_body`` checks, so a caller still hears 501 (not provisioned),
   401/403 (its credential) or 404 (a path suffix) before 400 ``invalid_body``, as when the
   handler looked at the body itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from orchestrator.errors import InvalidBody, OrchestratorError, RouteNotFound, Unauthenticated
from orchestrator.http.problem import problem_response
from orchestrator.http.request_body import decoded_body, json_document, raw_body
from orchestrator.observability import count, logger
from orchestrator.settings import get_settings

JSON = "application/json"
COMPRESS_ABOVE_BYTES = 1024
CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
BODY_HEADERS = frozenset({"content-type", "content-encoding"})

# Kept in the resolver's context for the request (Powertools clears it after each event).
UNDECODABLE_BODY = "undecodable_body"
REFUSED_DOCUMENT = "refused_document"

BeforeBody = Callable[..., object]
"""An operation's checks before its body, called with the resolver and the path parameters
as keywords."""


class InternalError(OrchestratorError):
    """Answer for anything unexpected: generic, no internals."""

    status, code, title = 500, "internal_error", "Internal Server Error"


def correlation_id(event: APIGatewayProxyEvent) -> str:
    """The caller's ``X-Correlation-Id`` when well-formed, else API Gateway's request id."""
    supplied = event.headers.get("x-correlation-id") or event.headers.get("X-Correlation-Id")
    if supplied and CORRELATION_ID.fullmatch(supplied):
        return supplied
    request_id = event.request_context.request_id
    return request_id or "unknown"


def request_path(event: APIGatewayProxyEvent) -> str:
    """The path as the client sent it (a Problem's ``instance``): API Gateway's
    ``requestContext.path`` holds the stage prefix exactly when the client's URL did (the
    execute-api host), and none behind a custom domain or locally."""
    sent = (event.get("requestContext") or {}).get("path")
    return sent if isinstance(sent, str) and sent else event.path


class RestResolver(APIGatewayRestResolver):
    """``APIGatewayRestResolver(enable_validation=True)``, handed bodies it can read, answering
    every error as a Problem (see the module docstring)."""

    def __init__(self, before_body: BeforeBody | None = None, *, decode_body: bool = True) -> None:
        super().__init__(enable_validation=True, json_body_deserializer=self.json_object)
        self.before_body = before_body
        self.decode_body = decode_body
        self.use(middlewares=[correlate])
        self.exception_handler(OrchestratorError)(self.domain_error)
        self.exception_handler(RequestValidationError)(self.invalid_request)
        self.exception_handler(Exception)(self.unexpected_error)
        self.not_found(self.no_route)

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Resolve ``event`` with its body decoded (1 in the module docstring)."""
        request = APIGatewayProxyEvent(dict(event))
        logger.set_correlation_id(correlation_id(request))
        count("Requests")
        if not self.decode_body:  # the operation reads the bytes itself (raw_request_body)
            return super().resolve(dict(event), context)
        try:
            content = raw_body(request.body, is_base64_encoded=bool(request.is_base64_encoded))
            if content:
                content = decoded_body(content, request.headers.get("content-encoding"), get_settings().max_body_bytes)
        except OrchestratorError as undecodable:
            normalized = json_request(event, b"")
            self.context[UNDECODABLE_BODY] = undecodable  # cleared by the resolver after each event
        else:
            normalized = json_request(event, content)
        return super().resolve(normalized, context)

    def json_object(self, text: str) -> Any:
        """The body as Powertools' validation reads it (2 in the module docstring): strict
        JSON that DynamoDB can store (:func:`~orchestrator.http.request_body.json_document`),
        and an object. A refusal is kept for :meth:`invalid_request`, which answers it after
        the operation's checks; Powertools hears a ``JSONDecodeError``."""
        try:
            document = json_document(text.encode("utf-8", "surrogateescape"))
            if not isinstance(document, dict):
                raise InvalidBody("The body must be a JSON object.")
        except InvalidBody as refused:
            self.context[REFUSED_DOCUMENT] = refused
            raise json.JSONDecodeError(refused.detail, text, 0) from refused
        return document

    def problem(self, error: OrchestratorError) -> Response[str]:
        event = self.current_event
        return problem_response(error, instance=request_path(event), correlation_id=correlation_id(event))

    def domain_error(self, error: OrchestratorError) -> Response[str]:
        count("ServerErrors" if error.status >= 500 else "ClientErrors")
        if error.status >= 500:
            logger.warning("request failed", code=error.problem_code, status=error.status)
        return self.problem(error)

    def invalid_request(self, error: RequestValidationError) -> Response[str]:
        """The one answer to a body Powertools' validation refused (3 in the module docstring):
        an undecodable body at once; otherwise the operation's checks first, then 400
        ``invalid_body``."""
        if any(tuple(detail["loc"])[:1] == ("response",) for detail in error.errors()):
            return self.unexpected_error(error)  # a handler answered against its annotation
        undecodable: OrchestratorError | None = self.context.get(UNDECODABLE_BODY)
        if undecodable is not None:
            return self.domain_error(undecodable)
        try:
            if self.before_body is not None:
                self.before_body(self, **self.current_event.path_parameters)
        except OrchestratorError as refused:
            return self.domain_error(refused)
        except Exception as unexpected:  # noqa: BLE001 - as a failure in the handler is answered
            return self.unexpected_error(unexpected)
        refused_document: InvalidBody | None = self.context.get(REFUSED_DOCUMENT)
        return self.domain_error(refused_document or schema_mismatch(error, self.current_event.body))

    def unexpected_error(self, _: Exception) -> Response[str]:
        count("ServerErrors")
        logger.exception("unexpected error")
        return self.problem(InternalError("The request could not be completed."))

    def no_route(self, _: Exception) -> Response[str]:
        event = self.current_event
        return self.problem(RouteNotFound(f"No route for {event.http_method} {event.path}."))


def correlate(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Every answer carries the correlation id; a successful JSON one is gzipped when worth
    it. An undecodable body is refused here, before the handler."""
    undecodable: OrchestratorError | None = app.context.get(UNDECODABLE_BODY)
    if undecodable is not None:
        raise undecodable
    response = next_middleware(app)
    response.headers["X-Correlation-Id"] = correlation_id(app.current_event)
    compress_if_worth_it(response)
    return response


def json_request(event: Mapping[str, Any], content: bytes) -> dict[str, Any]:
    """``event`` carrying ``content`` as a plain JSON body: text, ``None`` when blank, no
    ``Content-Encoding``, ``Content-Type: application/json`` (what Powertools' validation
    parses, whatever the client said). Bytes that are not UTF-8 travel as surrogate escapes,
    for :meth:`RestResolver.json_object` to refuse once the operation's checks have run."""
    body = content.decode("utf-8", "surrogateescape") if content.strip() else None
    normalized = dict(event) | {"body": body, "isBase64Encoded": False}
    normalized["headers"] = _without_body_headers(event.get("headers")) | {"Content-Type": JSON}
    if event.get("multiValueHeaders"):
        normalized["multiValueHeaders"] = _without_body_headers(event["multiValueHeaders"]) | {"Content-Type": [JSON]}
    return normalized


def _without_body_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    return {name: value for name, value in (headers or {}).items() if name.lower() not in BODY_HEADERS}


def rest_app(before_body: BeforeBody | None = None, *, decode_body: bool = True) -> RestResolver:
    """A resolver with correlation ids, decoded and validated bodies and Problem+JSON errors.

    ``before_body`` is what the operation checks before it looks at its body (that it is
    provisioned, the caller's credential, the path), called with the resolver and the path
    parameters as keywords: the handler calls it first, and a refused body is answered only
    once it passed. With ``decode_body=False`` the event is left as sent, for an operation
    whose body is not a JSON object (telemetry batches): it reads :func:`raw_request_body`.
    """
    return RestResolver(before_body, decode_body=decode_body)


def raw_request_body(app: APIGatewayRestResolver) -> bytes:
    """The body's bytes as the client sent them (still gzipped if it said so)."""
    event = app.current_event
    return raw_body(event.body, is_base64_encoded=bool(event.is_base64_encoded))


def schema_mismatch(error: RequestValidationError, body: str | None) -> InvalidBody:
    """400 ``invalid_body`` for a body the route's model refuses, naming each field as
    pydantic does (dotted, without Powertools' ``body`` prefix; ``(body)`` for the whole)."""
    if body is None:
        return InvalidBody("A JSON object body is required.")
    errors = []
    for detail in error.errors():
        loc = tuple(detail["loc"])
        path = loc[1:] if loc[:1] == ("body",) else loc
        errors.append({"field": ".".join(str(p) for p in path) or "(body)", "message": detail["msg"]})
    return InvalidBody("The body does not match the schema.", errors=errors)


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
