"""Operator bearer JWTs (SPEC §12).

In AWS the token is verified against the identity provider's JWKS and issuer;
in local mode against an HS256 dev key from the secret store. The API's
Lambda authorizer calls :func:`verify_operator_token`; handlers read the
resulting principal from the authorizer context.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt

from orchestrator import secrets
from orchestrator.errors import Unauthenticated
from orchestrator.settings import get_settings

ASYMMETRIC_ALGORITHMS = ["RS256", "ES256", "EdDSA"]
REQUIRED_CLAIMS = ["exp", "sub", "iss", "aud"]


@lru_cache(maxsize=1)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=600)


def verify_operator_token(token: str) -> dict[str, Any]:
    """The verified claims, or :class:`Unauthenticated`."""
    settings = get_settings()
    try:
        if settings.jwks_url:
            signing_key: Any = _jwks_client(settings.jwks_url).get_signing_key_from_jwt(token).key
            algorithms = ASYMMETRIC_ALGORITHMS
        else:
            signing_key = secrets.jwt_key()
            algorithms = ["HS256"]
        claims: dict[str, Any] = jwt.decode(
            token,
            signing_key,
            algorithms=algorithms,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": REQUIRED_CLAIMS},
            leeway=30,
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated("The bearer token is invalid or expired.") from exc
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise Unauthenticated("The bearer token has no subject.")
    return claims


def mint_dev_token(subject: str, *, now: datetime, ttl: timedelta = timedelta(hours=24)) -> str:
    """An HS256 operator token signed with the dev key (local mode and tests only)."""
    settings = get_settings()
    claims = {
        "sub": subject,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, secrets.jwt_key(), algorithm="HS256")
