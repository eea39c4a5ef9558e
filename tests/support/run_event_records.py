"""DynamoDB Streams records of run events, as the fan-out Lambda receives them (the event source mapping's
filter passes INSERTs of ``event#`` items only)."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeSerializer
from threadrunner.stores.run_events import event_sk


def event_item(
    run_id: str,
    seq: int,
    event_type: str,
    data: dict[str, Any] | None = None,
    *,
    user_id: str = "0f8fad5b-d9cb-469f-a165-70867728950e",
    thread_id: str = "thr_1",
) -> dict[str, Any]:
    """An event item as stores/run_events.py writes it (the thread under ``thread``)."""
    return {
        "run_id": run_id,
        "sk": event_sk(seq),
        "seq": seq,
        "type": event_type,
        "created_at": "2026-12-01T10:00:00+00:00",
        "data": data or {},
        "user_id": user_id,
        "thread": thread_id,
        "expires_at": 1_900_000_000,
    }


def stream_record(item: dict[str, Any], sequence_number: str) -> dict[str, Any]:
    """The INSERT record DynamoDB Streams (NEW_IMAGE) hands to Lambda for ``item``."""
    serialize = TypeSerializer().serialize
    return {
        "eventID": f"id-{sequence_number}",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_764_583_200,
            "Keys": {"run_id": {"S": item["run_id"]}, "sk": {"S": item["sk"]}},
            "NewImage": {name: serialize(value) for name, value in item.items()},
            "SequenceNumber": sequence_number,
            "SizeBytes": 200,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/runs/stream/2026-12-01T00:00:00.000",
    }


def stream_records(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [stream_record(item, f"{1000 + index:021d}") for index, item in enumerate(items)]
