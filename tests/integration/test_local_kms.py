"""Local mode's KMS key: deployed from the template, and what it sealed still decrypts after
a clean stop and a fresh start (a new moto, whose new key would otherwise not know it)."""

from __future__ import annotations

from pathlib import Path

import boto3
from moto import mock_aws

from orchestrator_local import kms_keys, snapshot
from orchestrator_local.resources import REGION, deploy
from orchestrator_local.template import Template

CONTEXT = {"node_id": "n-1", "purpose": "nsk"}


def test_the_templates_key_and_alias_are_deployed_and_in_the_environment(template: Template) -> None:
    with mock_aws():
        stack = deploy(template, prefix="kms")
        alias = stack.environment()["SECRETS_KMS_KEY_ID"]
        assert alias == "alias/kms-node-secrets"
        kms = boto3.client("kms", region_name=REGION)
        assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == stack.refs["NodeSecretsKey"]


def test_what_the_key_sealed_decrypts_after_a_restart(template: Template, tmp_path: Path) -> None:
    # Given a stack that sealed something and was stopped cleanly
    with mock_aws():
        first = deploy(template, prefix="kms")
        alias = first.environment()["SECRETS_KMS_KEY_ID"]
        sealed = boto3.client("kms", region_name=REGION).encrypt(
            KeyId=alias, Plaintext=b"k" * 32, EncryptionContext=CONTEXT
        )["CiphertextBlob"]
        snapshot.save(first, tmp_path / "state")
        first_key = first.refs["NodeSecretsKey"]
    # When a fresh moto deploys the template again and restores the saved state
    with mock_aws():
        second = deploy(template, prefix="kms")
        assert second.refs["NodeSecretsKey"] != first_key  # a new key, as moto makes it
        snapshot.restore(second, tmp_path / "state")
        kms = boto3.client("kms", region_name=REGION)
        # Then the old ciphertext decrypts through the alias the functions use, and new ones too
        opened = kms.decrypt(KeyId=alias, CiphertextBlob=sealed, EncryptionContext=CONTEXT)["Plaintext"]
        assert opened == b"k" * 32
        assert second.refs["NodeSecretsKey"] == first_key
        again = kms.encrypt(KeyId=alias, Plaintext=b"x", EncryptionContext=CONTEXT)["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=again, EncryptionContext=CONTEXT)["Plaintext"] == b"x"


def test_a_state_saved_before_keys_existed_restores_without_them(template: Template, tmp_path: Path) -> None:
    with mock_aws():
        stack = deploy(template, prefix="kms")
        snapshot.save(stack, tmp_path / "state")
        (tmp_path / "state" / snapshot.KMS_FILE).unlink()
        key = stack.refs["NodeSecretsKey"]
        snapshot.restore(stack, tmp_path / "state")
        assert stack.refs["NodeSecretsKey"] == key
        assert kms_keys.export_keys(stack)["NodeSecretsKey"]["key_id"] == key


def test_every_buckets_objects_survive_a_restart_with_their_version_ids(template: Template, tmp_path: Path) -> None:
    # Given an output and a telemetry object, and a line saved by an older version (no bucket)
    with mock_aws():
        first = deploy(template, prefix="kms")
        s3 = boto3.client("s3", region_name=REGION)
        s3.put_object(Bucket=first.refs["OutputBucket"], Key="outputs/x", Body=b"out")
        s3.put_object(Bucket=first.refs["TelemetryBucket"], Key="telemetry/logs/x.gz", Body=b"\x1f\x8btel")
        version = s3.put_object(Bucket=first.refs["ArtifactBucket"], Key="plexd/a", Body=b"bin")["VersionId"]
        snapshot.save(first, tmp_path / "state")
    with (tmp_path / "state" / snapshot.OBJECTS_FILE).open("a") as saved:
        saved.write('{"key": "outputs/old", "body": "b2xk"}\n')
    # When a fresh moto restores the state
    with mock_aws():
        second = deploy(template, prefix="kms")
        snapshot.restore(second, tmp_path / "state")
        s3 = boto3.client("s3", region_name=REGION)
        # Then each object is back in its own bucket, and the older line in the output bucket
        assert s3.get_object(Bucket=second.refs["OutputBucket"], Key="outputs/x")["Body"].read() == b"out"
        telemetry = s3.get_object(Bucket=second.refs["TelemetryBucket"], Key="telemetry/logs/x.gz")
        assert telemetry["Body"].read() == b"\x1f\x8btel"
        assert s3.get_object(Bucket=second.refs["OutputBucket"], Key="outputs/old")["Body"].read() == b"old"
        # And a versioned bucket's object keeps its version id (artifact downloads name it)
        artifact = s3.get_object(Bucket=second.refs["ArtifactBucket"], Key="plexd/a", VersionId=version)
        assert artifact["Body"].read() == b"bin"
