"""Stream consumer: target moves become counter deltas and audit events, once each, in batches."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from orchestrator.observability import task_entrypoint
from orchestrator.services.aggregate import StreamFold
from orchestrator.services.context import context_for

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@task_entrypoint
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    fold = StreamFold(context_for("fold_transitions"))

    def collect(record: DynamoDBRecord) -> None:
        fold.collect(record.raw_event["dynamodb"])

    # A record that cannot be read is reported as failed (the stream retries from it); the
    # batch's moves are folded after collecting, and an error there retries the whole batch:
    # both are safe, because a move that was already folded is skipped.
    response = process_partial_response(event=event, record_handler=collect, processor=processor, context=context)
    fold.apply()
    return response
