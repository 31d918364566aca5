"""The event relay's AWS side in template.yaml (EventTier relay) and its container image.

These pin what a deploy cannot check until it has run an hour: the relay tier exists only when
asked for, the relay can read events but not rewrite the table, agents reach it over TLS only,
and its container gets the environment the functions get.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator_local.template import ROOT, load_template

RELAY_PORT = 8080
RELAY_NAMESPACES = ("AWS::EC2::", "AWS::ECS::", "AWS::ElasticLoadBalancingV2::", "AWS::ApplicationAutoScaling::")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(document: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = document["Resources"]
    return resources


def _references(value: Any) -> Iterator[str]:
    """Every logical id (resource or parameter) a value refers to: Ref, GetAtt and Sub."""
    if isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                yield arg
            elif key == "Fn::GetAtt":
                yield arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                yield from (m.split(".", 1)[0] for m in re.findall(r"\$\{([^!][^}]*)\}", text))
                if not isinstance(arg, str):
                    yield from _references(arg[1])
            else:
                yield from _references(arg)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _depends_on(resource: dict[str, Any]) -> list[str]:
    depends = resource.get("DependsOn", [])
    return [depends] if isinstance(depends, str) else list(depends)


def _container(resources: dict[str, Any]) -> dict[str, Any]:
    (container,) = resources["RelayTaskDefinition"]["Properties"]["ContainerDefinitions"]
    return dict(container)


def _environment(container: dict[str, Any]) -> dict[str, Any]:
    names = [entry["Name"] for entry in container["Environment"]]
    assert len(names) == len(set(names)), "a variable is set twice"
    return {entry["Name"]: entry["Value"] for entry in container["Environment"]}


# ---------------------------------------------------------------- the event index


def test_gsi5_is_keyed_by_its_own_string_attributes_and_projects_every_attribute(resources: dict[str, Any]) -> None:
    table = resources["Table"]["Properties"]
    (index,) = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == "GSI5"]
    assert index["KeySchema"] == [
        {"AttributeName": "GSI5PK", "KeyType": "HASH"},
        {"AttributeName": "GSI5SK", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}  # the poller reads whole events from it
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert (types["GSI5PK"], types["GSI5SK"]) == ("S", "S")


def test_every_function_and_the_relay_get_the_event_index_shard_count(document: dict[str, Any]) -> None:
    parameter = document["Parameters"]["EventIndexShards"]
    assert (parameter["Type"], parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (
        "Number",
        8,
        1,
        64,
    )
    variables = document["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["EVENT_INDEX_SHARDS"] == {"Ref": "EventIndexShards"}
    assert _environment(_container(document["Resources"]))["EVENT_INDEX_SHARDS"] == {"Ref": "EventIndexShards"}


# ---------------------------------------------------------------- only when asked for


def test_the_default_tier_is_lambda_and_relay_asks_for_an_image_and_a_certificate(document: dict[str, Any]) -> None:
    tier = document["Parameters"]["EventTier"]
    assert (tier["Default"], sorted(tier["AllowedValues"])) == ("lambda", ["lambda", "relay"])
    assert document["Conditions"]["UseRelay"] == {"Fn::Equals": [{"Ref": "EventTier"}, "relay"]}
    for name in ("RelayImageUri", "RelayCertificateArn"):
        assert document["Parameters"][name]["Default"] == ""  # a lambda deploy needs neither
    rule = document["Rules"]["RelayNeedsImageAndCertificate"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "EventTier"}, "relay"]}
    asserted = [a["Assert"] for a in rule["Assertions"]]
    for name in ("RelayImageUri", "RelayCertificateArn"):
        assert {"Fn::Not": [{"Fn::Equals": [{"Ref": name}, ""]}]} in asserted


def test_every_relay_resource_exists_only_in_the_relay_tier(resources: dict[str, Any]) -> None:
    relay = {name for name, r in resources.items() if r.get("Condition") == "UseRelay"}
    # The whole network, cluster, load balancer and scaling side, and nothing before issue 17.
    for name, resource in resources.items():
        if resource["Type"].startswith(RELAY_NAMESPACES) or name.startswith("Relay"):
            assert name in relay, name
    assert {"RelayTaskRole", "RelayExecutionRole", "RelayLogGroup", "RelayService", "RelayListener"} <= relay


def test_nothing_outside_the_relay_tier_refers_to_a_relay_resource(
    document: dict[str, Any], resources: dict[str, Any]
) -> None:
    # A lambda deploy would fail on a dangling reference to a resource it does not create.
    relay = {name for name, r in resources.items() if r.get("Condition") == "UseRelay"}
    for name, resource in resources.items():
        if resource.get("Condition") == "UseRelay":
            continue
        used = set(_references(resource.get("Properties", {}))) | set(_depends_on(resource))
        assert not used & relay, (name, used & relay)
    for name, output in document["Outputs"].items():
        if set(_references(output["Value"])) & relay:
            assert output.get("Condition") == "UseRelay", name
    assert {"AgentUrl", "RelayLogGroup"} <= {n for n, o in document["Outputs"].items() if o.get("Condition")}


def test_the_agent_url_is_https_on_the_load_balancer(document: dict[str, Any]) -> None:
    assert document["Outputs"]["AgentUrl"]["Value"] == {"Fn::Sub": "https://${RelayLoadBalancer.DNSName}"}


# ---------------------------------------------------------------- least privilege


def _task_statements(resources: dict[str, Any]) -> list[dict[str, Any]]:
    role = resources["RelayTaskRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    return [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_relay_reads_events_and_moves_a_cursor_but_cannot_put_delete_or_scan(resources: dict[str, Any]) -> None:
    statements = _task_statements(resources)
    assert all(s["Effect"] == "Allow" and "NotAction" not in s and "NotResource" not in s for s in statements)
    dynamodb = [s for s in statements if any(a.startswith("dynamodb:") for a in _actions(s))]
    granted = {a for s in dynamodb for a in _actions(s)}
    assert granted == {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"}
    for statement in dynamodb:
        assert _listed(statement["Resource"]) == [
            {"Fn::GetAtt": ["Table", "Arn"]},
            {"Fn::Sub": "${Table.Arn}/index/*"},
        ]
    assert not any("*" in a for s in statements for a in _actions(s))


def test_the_relay_reads_the_signing_and_mesh_keys_and_no_other_secret(resources: dict[str, Any]) -> None:
    statements = [s for s in _task_statements(resources) if any(a.startswith("secretsmanager:") for a in _actions(s))]
    assert {a for s in statements for a in _actions(s)} == {"secretsmanager:GetSecretValue"}
    read = {r["Ref"] for s in statements for r in _listed(s["Resource"])}
    assert read == {"SigningKeySecret", "MeshKeySecret"}  # what NodeEventsFunction reads
    node_events = resources["NodeEventsFunction"]["Properties"]["Policies"]
    assert read == {p["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]["Ref"] for p in node_events[1:]}


def test_only_ecs_tasks_of_this_account_assume_the_relay_roles(resources: dict[str, Any]) -> None:
    for name in ("RelayTaskRole", "RelayExecutionRole"):
        (statement,) = resources[name]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}, name
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}, name
    task_definition = resources["RelayTaskDefinition"]["Properties"]
    assert task_definition["TaskRoleArn"] == {"Fn::GetAtt": ["RelayTaskRole", "Arn"]}
    assert task_definition["ExecutionRoleArn"] == {"Fn::GetAtt": ["RelayExecutionRole", "Arn"]}


# ---------------------------------------------------------------- the network path


def test_agents_reach_the_relay_over_tls_on_443_only(resources: dict[str, Any]) -> None:
    listener = resources["RelayListener"]["Properties"]
    assert (listener["Protocol"], listener["Port"]) == ("TLS", 443)
    assert listener["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert listener["Certificates"] == [{"CertificateArn": {"Ref": "RelayCertificateArn"}}]
    assert listener["DefaultActions"] == [{"Type": "forward", "TargetGroupArn": {"Ref": "RelayTargetGroup"}}]
    balancer = resources["RelayLoadBalancer"]["Properties"]
    assert (balancer["Type"], balancer["Scheme"]) == ("network", "internet-facing")
    listeners = [n for n, r in resources.items() if r["Type"] == "AWS::ElasticLoadBalancingV2::Listener"]
    assert listeners == ["RelayListener"]
    (ingress,) = resources["RelayLoadBalancerSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert (ingress["IpProtocol"], ingress["FromPort"], ingress["ToPort"]) == ("tcp", 443, 443)


def test_the_tasks_take_the_relay_port_from_the_load_balancer_only(resources: dict[str, Any]) -> None:
    assert "SecurityGroupIngress" not in resources["RelayTaskSecurityGroup"]["Properties"]
    ingress = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
    assert ingress == [
        {
            "Description": "The load balancer (traffic and health checks)",
            "GroupId": {"Ref": "RelayTaskSecurityGroup"},
            "IpProtocol": "tcp",
            "FromPort": RELAY_PORT,
            "ToPort": RELAY_PORT,
            "SourceSecurityGroupId": {"Ref": "RelayLoadBalancerSecurityGroup"},
        }
    ]
    (egress,) = resources["RelayLoadBalancerSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert (egress["FromPort"], egress["DestinationSecurityGroupId"]) == (RELAY_PORT, {"Ref": "RelayTaskSecurityGroup"})


def test_the_target_group_checks_healthz_and_lets_held_streams_end_on_their_own(resources: dict[str, Any]) -> None:
    group = resources["RelayTargetGroup"]["Properties"]
    assert (group["Protocol"], group["Port"], group["TargetType"]) == ("TCP", RELAY_PORT, "ip")
    assert (group["HealthCheckProtocol"], group["HealthCheckPath"]) == ("HTTP", "/healthz")
    attributes = {a["Key"]: a["Value"] for a in group["TargetGroupAttributes"]}
    assert attributes["deregistration_delay.timeout_seconds"] == "30"
    assert attributes["deregistration_delay.connection_termination.enabled"] == "false"


# ---------------------------------------------------------------- the service and its container


def test_the_container_gets_the_functions_environment_and_the_relays_own(document: dict[str, Any]) -> None:
    environment = _environment(_container(document["Resources"]))
    functions = document["Globals"]["Function"]["Environment"]["Variables"]
    for name, value in functions.items():
        assert environment.get(name) == value, name
    # The upstream is the API stage URL, built exactly as the ApiUrl output builds it.
    assert environment["RELAY_UPSTREAM_URL"] == document["Outputs"]["ApiUrl"]["Value"]
    assert (environment["RELAY_PORT"], environment["RELAY_ADMIN_PORT"]) == (str(RELAY_PORT), "8081")


def test_only_the_relay_port_is_published_and_the_service_serves_it(resources: dict[str, Any]) -> None:
    container = _container(resources)
    assert container["PortMappings"] == [{"Name": "relay", "ContainerPort": RELAY_PORT, "Protocol": "tcp"}]
    task_definition = resources["RelayTaskDefinition"]["Properties"]
    assert task_definition["RuntimePlatform"] == {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"}
    assert (task_definition["NetworkMode"], task_definition["RequiresCompatibilities"]) == ("awsvpc", ["FARGATE"])
    service = resources["RelayService"]
    assert "RelayListener" in _depends_on(service)
    props = service["Properties"]
    assert props["LoadBalancers"] == [
        {"ContainerName": container["Name"], "ContainerPort": RELAY_PORT, "TargetGroupArn": {"Ref": "RelayTargetGroup"}}
    ]
    assert props["DesiredCount"] == {"Ref": "RelayDesiredCount"}
    assert props["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert props["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "ENABLED"


def test_the_service_scales_on_cpu_between_the_desired_and_the_maximum_count(resources: dict[str, Any]) -> None:
    target = resources["RelayScalableTarget"]["Properties"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == ({"Ref": "RelayDesiredCount"}, {"Ref": "RelayMaxCount"})
    assert target["ResourceId"] == {"Fn::Sub": "service/${RelayCluster}/${RelayService.Name}"}
    tracking = resources["RelayCpuScaling"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"] == {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}
    assert tracking["TargetValue"] == 60


def test_the_relays_logs_are_kept_30_days_and_outlive_the_relay_tier(resources: dict[str, Any]) -> None:
    group = resources["RelayLogGroup"]
    assert group["Properties"]["RetentionInDays"] == 30
    assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("Retain", "Retain")
    options = _container(resources)["LogConfiguration"]["Options"]
    assert options["awslogs-group"] == {"Ref": "RelayLogGroup"}


# ---------------------------------------------------------------- the image


def _dockerfile() -> str:
    return (ROOT / "relay" / "Dockerfile").read_text()


def test_the_image_runs_the_relay_module_on_arm64_on_the_tasks_port() -> None:
    dockerfile = _dockerfile()
    assert re.search(r"^FROM --platform=linux/arm64 python:3\.12-slim$", dockerfile, re.MULTILINE)
    assert re.search(r'^CMD \["python", "-m", "orchestrator\.relay"\]$', dockerfile, re.MULTILINE)
    assert re.search(rf"^EXPOSE {RELAY_PORT}$", dockerfile, re.MULTILINE)
    assert (ROOT / "layers/shared/python/orchestrator").is_dir()


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the build context (.dockerignore: the last
    matching pattern decides; a pattern matches a path or any of its parents)."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").strip("/")
        regex = re.escape(glob).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            ignored = not negated
    return ignored


def test_the_build_context_holds_every_file_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = [
        source
        for line in _dockerfile().splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
        if not source.startswith("--")
    ]
    assert "layers/shared/python/" in sources
    for source in sources:
        path = ROOT / source
        assert path.exists(), source
        files = [p for p in path.rglob("*.py")] if path.is_dir() else [path]
        assert files, source
        for file in files:
            relative = str(file.relative_to(ROOT))
            assert not _ignored(relative, patterns), relative
    assert _ignored(".venv/bin/python", patterns)
    assert _ignored("tests/unit/test_relay_template.py", patterns)
    assert _ignored("layers/shared/python/orchestrator/__pycache__/x.pyc", patterns)


def test_the_image_pins_boto3_as_the_dev_environment_does() -> None:
    pins = re.findall(r"^(boto3|botocore)==\S+$", (ROOT / "requirements-dev.txt").read_text(), re.MULTILINE)
    assert sorted(pins) == ["boto3", "botocore"]  # what the image's grep takes (it checks for two lines)
    assert "requirements-dev.txt" in _dockerfile()
