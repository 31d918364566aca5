"""The KMS key that seals node keys and wraps secrets' data keys (SPEC §18).

Each call is one KMS request. KMS being unreachable or refusing is a dependency outage
(503 ``dependency_unavailable``), never a client error: nothing a caller sent is decrypted
here, only what the control plane itself sealed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from orchestrator import aws
from orchestrator.errors import DependencyUnavailable
from orchestrator.observability import logger
from orchestrator.settings import get_settings, require


@dataclass(frozen=True)
class DataKey:
    plaintext: bytes
    wrapped: bytes


def _key_id(operation: str) -> str:
    return require(get_settings().secrets_kms_key_id, f"{operation}_not_provisioned")


@contextmanager
def _kms_errors() -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
        logger.warning("kms unavailable", error_code=code)
        raise DependencyUnavailable("The key service is unavailable.") from exc


def encrypt(plaintext: bytes, context: dict[str, str], *, operation: str) -> bytes:
    """``Encrypt`` under the deployment's key, bound to ``context``."""
    key_id = _key_id(operation)
    with _kms_errors():
        blob: bytes = aws.kms().encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=context)["CiphertextBlob"]
    return blob


def decrypt(blob: bytes, context: dict[str, str], *, operation: str) -> bytes:
    """``Decrypt`` a blob this deployment's key made under ``context``."""
    key_id = _key_id(operation)
    with _kms_errors():
        plaintext: bytes = aws.kms().decrypt(KeyId=key_id, CiphertextBlob=blob, EncryptionContext=context)["Plaintext"]
    return plaintext


def generate_data_key(context: dict[str, str], *, operation: str) -> DataKey:
    """A fresh AES-256 data key, in the clear and wrapped (``GenerateDataKey``)."""
    key_id = _key_id(operation)
    with _kms_errors():
        answer = aws.kms().generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=context)
    return DataKey(plaintext=answer["Plaintext"], wrapped=answer["CiphertextBlob"])
