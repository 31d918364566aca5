"""Problem documents and the local gateway's reading of template.yaml."""

from __future__ import annotations

import json
import re

from orchestrator.errors import NotProvisioned, RebacDenied
from orchestrator.http.problem import problem_response
from orchestrator_local.template import Route, Template


def test_problem_carries_code_status_and_extensions() -> None:
    response = problem_response(
        RebacDenied("nope", ["user:u", "project:p#admin"]), instance="/v1/x", correlation_id="c-1"
    )
    body = json.loads(response.body or "")
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/problem+json"
    assert body == {
        "type": "urn:plexsphere:problem:rebac_denied",
        "title": "Permission denied",
        "status": 403,
        "detail": "nope",
        "instance": "/v1/x",
        "code": "rebac_denied",
        "correlation_id": "c-1",
        "reason": "insufficient_relation",  # the SDK's PermissionDenied.reason vocabulary
        "relation_path": ["user:u", "project:p#admin"],
    }


def test_not_provisioned_uses_the_operation_code() -> None:
    body = json.loads(
        problem_response(NotProvisioned("actions_dispatch_not_provisioned"), instance="/", correlation_id="c").body
        or ""
    )
    assert (body["status"], body["code"]) == (501, "actions_dispatch_not_provisioned")


def test_route_paths_become_werkzeug_rules() -> None:
    assert Route("POST", "/v1/projects/{project_id}/executions:dispatch", "F", True).werkzeug_rule == (
        "/v1/projects/<project_id>/executions:dispatch"
    )
    assert Route("GET", "/v1/{proxy+}", "F", True).werkzeug_rule == "/v1/<path:proxy>"


def test_template_routes_have_a_handler_each_and_node_routes_skip_the_authorizer() -> None:
    template = Template()
    functions = template.functions
    for route in template.routes:
        assert functions[route.function].module_path.exists(), route
        node_facing = (
            route.path in {"/v1/register", "/v1/ping", "/v1/keys/rotate"}
            or route.path.startswith("/v1/nodes/")
            or (route.method == "GET" and route.path.startswith("/v1/artifacts/plexd/"))  # a node's download
        )
        assert route.authorized is not node_facing, route


def test_every_function_folder_is_declared_in_the_template() -> None:
    template = Template()
    declared = {f.code_dir.name for f in template.functions.values()}
    on_disk = {p.parent.name for p in (template.functions["RegisterNodeFunction"].code_dir.parent).glob("*/app.py")}
    assert declared == on_disk


def test_every_gateway_response_is_a_problem_whose_status_is_the_responses() -> None:
    responses = Template().gateway_responses
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "UNAUTHORIZED", "THROTTLED", "QUOTA_EXCEEDED"} <= set(responses)
    for kind, config in responses.items():
        template = config["ResponseTemplates"]["application/json"]
        rendered = json.loads(re.sub(r"\$context\.[\w.]+", "x", template).replace(":x,", ':"x",'))
        assert rendered["status"] == int(config["StatusCode"]), kind
        assert {"type", "title", "status", "detail", "instance", "code", "correlation_id"} <= set(rendered), kind
        assert config["ResponseParameters"]["Headers"]["Content-Type"] == "'application/problem+json'", kind
