"""The port through which a dispatch starts its workflow (Step Functions in AWS and locally)."""

from __future__ import annotations

import json
import math
from typing import Protocol

from botocore.exceptions import BotoCoreError, ClientError

from orchestrator import aws
from orchestrator.clock import rfc3339
from orchestrator.domain.executions import Execution
from orchestrator.errors import DependencyUnavailable
from orchestrator.observability import logger

MIN_POLL_SECONDS = 1
MAX_POLL_SECONDS = 15


def poll_seconds(timeout_seconds: int) -> int:
    """How often the workflow checks for early completion: ~30 checks per timeout, 1..15 s."""
    return max(MIN_POLL_SECONDS, min(MAX_POLL_SECONDS, math.ceil(timeout_seconds / 30)))


def workflow_input(execution: Execution) -> dict[str, object]:
    return {
        "execution_id": execution.id,
        "project_id": execution.project_id,
        "expires_at": rfc3339(execution.expires_at),
        "poll_seconds": poll_seconds(execution.timeout_seconds),
        "failed_step": None,
    }


class WorkflowStarter(Protocol):
    def start(self, execution: Execution) -> str: ...

    def existing(self, execution_id: str) -> str | None:
        """The ARN of the Execution's workflow run if one was ever started, else None."""
        ...

    def stop(self, run_arn: str, cause: str) -> None:
        """Stop a run (best effort: one that already ended is left as it is)."""
        ...


class StepFunctionsStarter:
    """Starts the Execution workflow; the Execution id is the (idempotent) run name."""

    def __init__(self, state_machine_arn: str) -> None:
        self.state_machine_arn = state_machine_arn

    def _run_arn(self, execution_id: str) -> str:
        return f"{self.state_machine_arn.replace(':stateMachine:', ':execution:')}:{execution_id}"

    def start(self, execution: Execution) -> str:
        try:
            response = aws.stepfunctions().start_execution(
                stateMachineArn=self.state_machine_arn,
                name=execution.id,
                input=json.dumps(workflow_input(execution)),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return self._run_arn(execution.id)
            raise DependencyUnavailable("The workflow service is unavailable.") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable("The workflow service is unavailable.") from exc
        return response["executionArn"]

    def existing(self, execution_id: str) -> str | None:
        arn = self._run_arn(execution_id)
        try:
            aws.stepfunctions().describe_execution(executionArn=arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return None
            raise DependencyUnavailable("The workflow service is unavailable.") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable("The workflow service is unavailable.") from exc
        return arn

    def stop(self, run_arn: str, cause: str) -> None:
        try:
            aws.stepfunctions().stop_execution(executionArn=run_arn, cause=cause)
        except Exception as error:  # noqa: BLE001 - best effort, whatever the service (or moto) raises
            # Already ended, not yet running, or unreachable: left alone, the run finds no open
            # target and an ended Execution, and ends without a change.
            logger.warning("workflow run not stopped", run_arn=run_arn, error=type(error).__name__)
