"""Create the template's resources in moto and resolve the functions' environment.

Works against whatever endpoint boto3 is pointed at: an in-process
``mock_aws`` (tests) or a moto server (``make serve``).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from orchestrator_local import firehose
from orchestrator_local.template import ROOT, Template

ACCOUNT = "123456789012"
REGION = "us-east-1"


def function_arn(logical_id: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical_id}"


@dataclass
class Stack:
    """Physical ids of the deployed resources, and how to resolve intrinsics against them."""

    template: Template
    parameters: dict[str, str]
    name: str = "local"
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    # In-process (tests): deliver the table streams' records to their consumers now.
    pump: Callable[[], int] | None = None

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                if arg in self.parameters:
                    return self.parameters[arg]
                pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": self.name}
                return pseudo.get(arg) or ("aws" if arg == "AWS::Partition" else self.refs[arg])
            if key == "Fn::GetAtt":
                return self.attributes[(arg[0], arg[1])]
            if key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                return re.sub(r"\$\{([\w:.]+)\}", lambda m: self._sub(m.group(1)), text)
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _sub(self, name: str) -> str:
        if "." in name:
            resource, attribute = name.split(".", 1)
            return self.attributes[(resource, attribute)]
        return str(self.resolve({"Ref": name}))

    def environment(self) -> dict[str, str]:
        """The union of every function's environment (they agree on shared names)."""
        env = {k: str(self.resolve(v)) for k, v in self.template.global_environment.items()}
        for function in self.template.functions.values():
            for key, value in function.environment.items():
                resolved = str(self.resolve(value))
                if env.get(key, resolved) != resolved:
                    raise ValueError(f"functions disagree on {key}")
                env[key] = resolved
        return env


def deploy(
    template: Template | None = None, *, prefix: str = "local", parameters: dict[str, str] | None = None
) -> Stack:
    """Create every storage, secret, bus and workflow resource of the template."""
    template = template or Template()
    stack = Stack(template, {**template.parameter_defaults(), **(parameters or {})}, name=prefix)
    for name in template.functions:
        stack.refs[name] = name
        stack.attributes[(name, "Arn")] = function_arn(name)

    _name_unemulated(stack, prefix)
    for name, resource in template.resources_of("AWS::DynamoDB::Table").items():
        _create_table(stack, name, resource["Properties"], f"{prefix}-{name}")
    for name, resource in template.resources_of("AWS::S3::Bucket").items():
        _create_bucket(stack, name, resource, f"{prefix}-{name}".lower())
    _configure_bucket_notifications(stack)
    for name, resource in template.resources_of("AWS::KinesisFirehose::DeliveryStream").items():
        _create_delivery_stream(stack, name, resource["Properties"], f"{prefix}-{name}")
    for name in template.resources_of("AWS::SecretsManager::Secret"):
        created = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=f"{prefix}/{name}", SecretString=secrets.token_urlsafe(48)
        )
        stack.refs[name] = created["ARN"]
    kms = boto3.client("kms", region_name=REGION)
    for name, resource in template.resources_of("AWS::KMS::Key").items():
        key = kms.create_key(Description=resource["Properties"].get("Description", name))["KeyMetadata"]
        stack.refs[name] = key["KeyId"]
        stack.attributes[(name, "Arn")] = key["Arn"]
    for name, resource in template.resources_of("AWS::KMS::Alias").items():
        alias = str(stack.resolve(resource["Properties"]["AliasName"]))
        kms.create_alias(AliasName=alias, TargetKeyId=str(stack.resolve(resource["Properties"]["TargetKeyId"])))
        stack.refs[name] = alias
    for name, resource in template.resources_of("AWS::Events::EventBus").items():
        bus = stack.resolve(resource["Properties"]["Name"])
        boto3.client("events", region_name=REGION).create_event_bus(Name=bus)
        stack.refs[name] = bus
    for name, resource in template.resources_of("AWS::Serverless::StateMachine").items():
        _create_state_machine(stack, name, resource["Properties"], f"{prefix}-{name}")
    return stack


def _create_bucket(stack: Stack, name: str, resource: dict[str, Any], bucket: str) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    if resource.get("Properties", {}).get("VersioningConfiguration", {}).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    stack.refs[name] = bucket
    stack.attributes[(name, "Arn")] = f"arn:aws:s3:::{bucket}"


def _name_unemulated(stack: Stack, prefix: str) -> None:
    """Names and ARNs for what local mode does not create (roles, log groups) but other
    resources refer to."""
    template = stack.template
    for name in template.resources_of("AWS::IAM::Role"):
        stack.refs[name] = f"{prefix}-{name}"
        stack.attributes[(name, "Arn")] = f"arn:aws:iam::{ACCOUNT}:role/{prefix}-{name}"
    for name in [*template.resources_of("AWS::Logs::LogGroup"), *template.resources_of("AWS::Logs::LogStream")]:
        stack.refs[name] = f"{prefix}-{name}"
        stack.attributes[(name, "Arn")] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{prefix}-{name}"


def _configure_bucket_notifications(stack: Stack) -> None:
    """The functions' ``S3`` events as each bucket's notification configuration (SAM's
    translation), so moto notifies them (routed by ``runtime.install_moto_s3_notification_router``)."""
    by_bucket: dict[str, list[dict[str, Any]]] = {}
    for function, props in stack.template.function_events("S3"):
        events = props["Events"] if isinstance(props["Events"], list) else [props["Events"]]
        configuration: dict[str, Any] = {"LambdaFunctionArn": function_arn(function), "Events": events}
        rules = props.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        if rules:
            configuration["Filter"] = {
                "Key": {"FilterRules": [{"Name": rule["Name"], "Value": rule["Value"]} for rule in rules]}
            }
        by_bucket.setdefault(str(stack.resolve(props["Bucket"])), []).append(configuration)
    for bucket, configurations in by_bucket.items():
        notification: Any = {"LambdaFunctionConfigurations": configurations}
        boto3.client("s3", region_name=REGION).put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=notification
        )


def _create_table(stack: Stack, name: str, props: dict[str, Any], table_name: str) -> None:
    client = boto3.client("dynamodb", region_name=REGION)
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("StreamSpecification"):
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    created = client.create_table(**kwargs)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    stack.refs[name] = table_name
    stack.attributes[(name, "Arn")] = created["TableArn"]
    stack.attributes[(name, "StreamArn")] = created.get("LatestStreamArn", "")


def _create_delivery_stream(stack: Stack, name: str, props: dict[str, Any], stream_name: str) -> None:
    """An extended S3 delivery stream; its dynamic partitioning runs in local mode as in AWS
    (:mod:`orchestrator_local.firehose`), whose jq subset the query must stay within."""
    destination = stack.resolve(props["ExtendedS3DestinationConfiguration"])
    hints = destination.get("BufferingHints", {})
    destination["BufferingHints"] = {key: int(value) for key, value in hints.items()}
    for processor in destination.get("ProcessingConfiguration", {}).get("Processors", []):
        for parameter in processor.get("Parameters", []):
            if parameter["ParameterName"] == "MetadataExtractionQuery":
                firehose.check_query(parameter["ParameterValue"])
    retry = destination.get("DynamicPartitioningConfiguration", {}).get("RetryOptions")
    if retry:
        retry["DurationInSeconds"] = int(retry["DurationInSeconds"])
    created = boto3.client("firehose", region_name=REGION).create_delivery_stream(
        DeliveryStreamName=stream_name,
        DeliveryStreamType=props.get("DeliveryStreamType", "DirectPut"),
        ExtendedS3DestinationConfiguration=destination,
    )
    stack.refs[name] = stream_name
    stack.attributes[(name, "Arn")] = created["DeliveryStreamARN"]


def _create_state_machine(stack: Stack, name: str, props: dict[str, Any], machine_name: str) -> None:
    definition = (ROOT / props["DefinitionUri"]).read_text()
    substitutions = {k: str(stack.resolve(v)) for k, v in props.get("DefinitionSubstitutions", {}).items()}
    definition = re.sub(r"\$\{(\w+)\}", lambda m: substitutions[m.group(1)], definition)
    json.loads(definition)  # fail early on a broken substitution
    created = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name=machine_name,
        definition=definition,
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{machine_name}",
        type=props.get("Type", "STANDARD"),
    )
    stack.refs[name] = created["stateMachineArn"]
    stack.attributes[(name, "Name")] = machine_name
    stack.attributes[(name, "Arn")] = created["stateMachineArn"]
