"""Reading template.yaml: functions, routes, authorizer, gateway responses, resources."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short-form tags into their long form."""


def _tag(name: str) -> Any:
    def construct(loader: _CfnLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return construct


for _short in ("Ref", "Condition"):
    _CfnLoader.add_constructor(f"!{_short}", _tag(_short))
for _short in (
    "GetAtt",
    "Sub",
    "If",
    "Equals",
    "Join",
    "Select",
    "Split",
    "Not",
    "And",
    "Or",
    "FindInMap",
    "ImportValue",
    "GetAZs",
    "Base64",
):
    _CfnLoader.add_constructor(f"!{_short}", _tag(f"Fn::{_short}"))


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open() as handle:
        document: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return document


@dataclass(frozen=True)
class Route:
    method: str  # upper case
    path: str  # API Gateway resource path, e.g. /v1/nodes/{node_id}/heartbeat
    function: str  # logical id
    authorized: bool  # behind the API's default authorizer

    @property
    def werkzeug_rule(self) -> str:
        rule = re.sub(r"\{(\w+)\+\}", r"<path:\1>", self.path)
        return re.sub(r"\{(\w+)\}", r"<\1>", rule)


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_dir: Path
    handler: str
    environment: dict[str, Any] = field(default_factory=dict)
    timeout_seconds: int = 3  # Lambda's default, as the template (Globals or the function) may override

    @property
    def module_path(self) -> Path:
        return self.code_dir / (self.handler.rsplit(".", 1)[0] + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass(frozen=True)
class Schedule:
    function: str  # logical id
    every_seconds: int


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int:
    """Seconds between runs of an EventBridge ``rate(...)`` expression (cron is not used here)."""
    match = _RATE.match(expression)
    if match is None:
        raise ValueError(f"unsupported schedule expression {expression!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


@dataclass(frozen=True)
class StreamSource:
    """A function's ``DynamoDB`` event: the table (logical id) whose stream it consumes."""

    function: str  # logical id
    table: str  # logical id
    batch_size: int
    max_retries: int
    patterns: tuple[dict[str, Any], ...]  # FilterCriteria patterns (any may match)


@dataclass(frozen=True)
class Authorizer:
    name: str
    function: str
    header: str
    ttl_seconds: int


class Template:
    """A typed view of the parts of template.yaml that local mode needs."""

    def __init__(self, document: dict[str, Any] | None = None) -> None:
        self.document = document or load_template()
        self.resources: dict[str, Any] = self.document["Resources"]
        self.globals: dict[str, Any] = self.document.get("Globals", {}).get("Function", {})

    def resources_of(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if res["Type"] == kind}

    @property
    def functions(self) -> dict[str, Function]:
        result = {}
        for name, resource in self.resources_of("AWS::Serverless::Function").items():
            props = resource["Properties"]
            result[name] = Function(
                logical_id=name,
                code_dir=ROOT / props["CodeUri"],
                handler=props.get("Handler", self.globals.get("Handler", "app.lambda_handler")),
                environment=props.get("Environment", {}).get("Variables", {}),
                timeout_seconds=int(props.get("Timeout", self.globals.get("Timeout", 3))),
            )
        return result

    @property
    def global_environment(self) -> dict[str, Any]:
        variables: dict[str, Any] = self.globals.get("Environment", {}).get("Variables", {})
        return variables

    @property
    def routes(self) -> list[Route]:
        routes = []
        for name, props in self.function_events("Api"):
            auth = props.get("Auth", {}).get("Authorizer")
            routes.append(Route(props["Method"].upper(), props["Path"], name, authorized=auth != "NONE"))
        return routes

    @property
    def schedules(self) -> list[Schedule]:
        """The functions' ``Schedule`` events (EventBridge rules in AWS)."""
        return [Schedule(name, rate_seconds(props["Schedule"])) for name, props in self.function_events("Schedule")]

    @property
    def stream_sources(self) -> list[StreamSource]:
        """The functions' ``DynamoDB`` stream events (event source mappings in AWS)."""
        sources = []
        for name, props in self.function_events("DynamoDB"):
            table, attribute = props["Stream"]["Fn::GetAtt"]
            if attribute != "StreamArn":
                raise ValueError(f"{name}: only a table's StreamArn is supported as a stream")
            filters = props.get("FilterCriteria", {}).get("Filters", [])
            sources.append(
                StreamSource(
                    function=name,
                    table=table,
                    batch_size=int(props.get("BatchSize", 100)),
                    max_retries=int(props.get("MaximumRetryAttempts", 10)),
                    patterns=tuple(json.loads(f["Pattern"]) for f in filters),
                )
            )
        return sources

    def function_events(self, event_type: str) -> list[tuple[str, dict[str, Any]]]:
        """(function logical id, event properties) of every function event of ``event_type``."""
        return [
            (name, event["Properties"])
            for name, resource in self.resources_of("AWS::Serverless::Function").items()
            for event in resource["Properties"].get("Events", {}).values()
            if event["Type"] == event_type
        ]

    @property
    def api(self) -> dict[str, Any]:
        (api,) = self.resources_of("AWS::Serverless::Api").values()
        props: dict[str, Any] = api["Properties"]
        return props

    @property
    def authorizer(self) -> Authorizer:
        auth = self.api["Auth"]
        name = auth["DefaultAuthorizer"]
        config = auth["Authorizers"][name]
        function = config["FunctionArn"]["Fn::GetAtt"][0]
        identity = config.get("Identity", {})
        return Authorizer(
            name, function, identity.get("Header", "Authorization"), int(identity.get("ReauthorizeEvery", 300))
        )

    @property
    def gateway_responses(self) -> dict[str, dict[str, Any]]:
        responses: dict[str, dict[str, Any]] = self.api.get("GatewayResponses", {})
        return responses

    @property
    def binary_media_types(self) -> list[str]:
        """The API's binary media types (SAM writes ``/`` as ``~1``)."""
        return [t.replace("~1", "/") for t in self.api.get("BinaryMediaTypes", [])]

    def parameter_defaults(self) -> dict[str, str]:
        return {name: str(p.get("Default", "")) for name, p in self.document.get("Parameters", {}).items()}
