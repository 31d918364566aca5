"""An HTTP front door that calls the handlers exactly as API Gateway (REST) would.

For every request: match the template's API events, run the TOKEN authorizer
on authorized routes (with its result cache), build the REST proxy event
(path and query parameters, headers, body, authorizer context), invoke the
function, and turn its proxy result into the HTTP response. Gateway-level
failures are rendered from the template's own ``GatewayResponses``.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from orchestrator_local.resources import ACCOUNT, REGION
from orchestrator_local.runtime import FunctionError
from orchestrator_local.template import Route, Template

Invoke = Callable[[str, Any], Any]
API_ID = "local"
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own limit
PATH_SAFE = "/:@!$&'()*+,;=-._~"  # RFC 3986 pchar and "/": left as they are in a path


class Gateway:
    def __init__(
        self, invoke: Invoke, template: Template | None = None, stage: str = "dev", *, access_log: bool = False
    ) -> None:
        self.access_log = access_log
        self.template = template or Template()
        self.invoke = invoke
        self.stage = stage
        self.authorizer = self.template.authorizer
        self.responses = self.template.gateway_responses
        self.binary = [t.lower() for t in self.template.binary_media_types]
        self.routes = self.template.routes
        self.url_map = Map(
            [Rule(r.werkzeug_rule, methods=[r.method], endpoint=i) for i, r in enumerate(self.routes)],
            strict_slashes=False,
            merge_slashes=False,
        )
        self._auth_cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._auth_lock = threading.Lock()

    # WSGI -----------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        started = time.perf_counter()
        response = self.handle(request)
        if self.access_log:
            elapsed = (time.perf_counter() - started) * 1000
            print(
                f"{request.method} {request.full_path.rstrip('?')} -> {response.status_code} ({elapsed:.0f} ms)",
                flush=True,
            )
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, path_params = adapter.match()
        except (NotFound, MethodNotAllowed):
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", request, request_id)
        except HTTPException:
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", request, request_id)
        route = self.routes[int(endpoint)]
        body = request.get_data(cache=False)
        if len(body) > MAX_PAYLOAD_BYTES:
            return self.gateway_response("REQUEST_TOO_LARGE", request, request_id)

        authorizer_context: dict[str, Any] | None = None
        if route.authorized:
            outcome = self.authorize(request, route, request_id)
            if isinstance(outcome, Response):
                return outcome
            authorizer_context = outcome

        event = self.build_event(request, route, dict(path_params), body, request_id, authorizer_context)
        try:
            result = self.invoke(route.function, event)
        except FunctionError as error:
            # As API Gateway answers a function that timed out, or failed without a response.
            kind = "INTEGRATION_TIMEOUT" if error.error_type == "Sandbox.Timedout" else "DEFAULT_5XX"
            return self.gateway_response(kind, request, request_id)
        return self.to_response(result)

    def is_binary(self, content_type: str | None) -> bool:
        """Whether API Gateway passes a body with this Content-Type base64-encoded, as is."""
        media_type = (content_type or "").partition(";")[0].strip().lower()
        return any(fnmatch.fnmatchcase(media_type, pattern) or pattern == "*/*" for pattern in self.binary)

    # Authorizer -------------------------------------------------------------------
    def method_arn(self, request: Request, route: Route) -> str:
        return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{self.stage}/{route.method}{request.path}"

    def authorize(self, request: Request, route: Route, request_id: str) -> dict[str, Any] | Response:
        token = request.headers.get(self.authorizer.header)
        if not token:
            return self.gateway_response("UNAUTHORIZED", request, request_id)
        now = time.monotonic()
        with self._auth_lock:
            cached = self._auth_cache.get(token)
        if cached and cached[0] > now:
            policy = cached[1]
        else:
            try:
                policy = self.invoke(
                    self.authorizer.function,
                    {"type": "TOKEN", "authorizationToken": token, "methodArn": self.method_arn(request, route)},
                )
            except FunctionError as error:
                if error.message == "Unauthorized":
                    policy = None
                else:
                    return self.gateway_response("AUTHORIZER_FAILURE", request, request_id)
            with self._auth_lock:
                self._auth_cache[token] = (now + self.authorizer.ttl_seconds, policy)
        if policy is None:
            return self.gateway_response("UNAUTHORIZED", request, request_id)
        if not _allows(policy, self.method_arn(request, route)):
            return self.gateway_response("ACCESS_DENIED", request, request_id)
        context = {k: v for k, v in (policy.get("context") or {}).items()}
        return {"principalId": policy.get("principalId"), **context}

    # Events and responses ---------------------------------------------------------------
    def build_event(
        self,
        request: Request,
        route: Route,
        path_params: dict[str, str],
        body: bytes,
        request_id: str,
        authorizer: dict[str, Any] | None,
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        query = {k: request.args.getlist(k) for k in request.args}
        text: str | None
        encoded = False
        if not body:
            text = None
        elif self.is_binary(request.headers.get("Content-Type")):
            text, encoded = base64.b64encode(body).decode(), True
        else:
            text = body.decode("utf-8", errors="replace")  # API Gateway's text passthrough
        context: dict[str, Any] = {
            "resourcePath": route.path,
            "httpMethod": route.method,
            # The path as the client sent it: locally, as behind a custom domain, no stage prefix.
            "path": request.path,
            "stage": self.stage,
            "requestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "domainName": request.host,
            "identity": {"sourceIp": request.remote_addr, "userAgent": request.user_agent.string},
        }
        if authorizer is not None:
            context["authorizer"] = authorizer
        return {
            "resource": route.path,
            "path": request.path,
            "httpMethod": route.method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": path_params or None,
            "stageVariables": None,
            "requestContext": context,
            "body": text,
            "isBase64Encoded": encoded,
        }

    @staticmethod
    def to_response(result: Any) -> Response:
        if not isinstance(result, dict) or "statusCode" not in result:
            return Response(
                json.dumps({"message": "Internal server error"}), status=502, content_type="application/json"
            )
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        response = Response(data, status=int(result["statusCode"]))
        response.headers.pop("Content-Type", None)
        for name, value in (result.get("headers") or {}).items():
            response.headers[name] = str(value)
        for name, values in (result.get("multiValueHeaders") or {}).items():
            response.headers.pop(name, None)
            for value in values:
                response.headers.add(name, str(value))
        return response

    def gateway_response(self, kind: str, request: Request, request_id: str, status: int | None = None) -> Response:
        """Render one of the template's GatewayResponses (API Gateway's own errors)."""
        config = self.responses.get(kind) or self.responses.get(
            "DEFAULT_5XX" if kind.startswith(("AUTHORIZER", "DEFAULT_5")) else "DEFAULT_4XX", {}
        )
        code = status or int(config.get("StatusCode", 500 if "5XX" in kind else 400))
        context = {
            "$context.requestId": request_id,
            # As the request line carried it: percent-encoded, so it never breaks the JSON template.
            "$context.path": quote(request.path, safe=PATH_SAFE),
            "$context.error.messageString": json.dumps(kind.replace("_", " ").title()),
        }
        body = config.get("ResponseTemplates", {}).get("application/json", '{"message":"error"}')
        body = re.sub(r"\$context\.[\w.]+", lambda m: context.get(m.group(0), ""), body)
        response = Response(body, status=code)
        response.headers.pop("Content-Type", None)
        for name, value in config.get("ResponseParameters", {}).get("Headers", {}).items():
            if value.startswith("'") and value.endswith("'"):
                response.headers[name] = value[1:-1]
            else:
                response.headers[name] = context.get("$" + value, "")
        return response


def _allows(policy: dict[str, Any], method_arn: str) -> bool:
    allowed = False
    for statement in policy.get("policyDocument", {}).get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(method_arn, pattern) for pattern in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = True
    return allowed
