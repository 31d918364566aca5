"""API Gateway TOKEN authorizer for operator routes: verifies the bearer JWT.

On success the policy allows every route of the API (so the cached decision
serves them all) and the principal id is the token's subject; handlers read
it from the authorizer context. An invalid token raises ``Unauthorized``,
API Gateway's contract for a 401 (rendered as Problem+JSON by the API's
gateway responses).
"""

from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponse,
)

from orchestrator.errors import Unauthenticated
from orchestrator.http.operator_auth import verify_operator_token
from orchestrator.observability import logger, task_entrypoint


@task_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    scheme, _, token = str(event.get("authorizationToken", "")).partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Exception("Unauthorized")
    try:
        claims = verify_operator_token(token.strip())
    except Unauthenticated:
        logger.info("operator token rejected")
        raise Exception("Unauthorized") from None
    policy = APIGatewayAuthorizerResponse.from_route_arn(
        event["methodArn"], principal_id=claims["sub"], context={"subject": claims["sub"]}
    )
    policy.allow_all_routes()
    return policy.asdict()
