"""Helpers for thread lifecycle tests: what TTL sends down the stream, and what is left of a user."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
from threadrunner import clock

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def ttl_remove_record(
    old_image: dict[str, Any], *, table_arn: str, sequence_number: str = "1000", by_ttl: bool = True
) -> dict[str, Any]:
    """A DynamoDB Streams record as Lambda receives it when TTL deleted the item (NEW_AND_OLD_IMAGES).

    ``old_image`` is in DynamoDB JSON (``{"S": ...}``), as GetItem on the low-level client returns it."""
    record: dict[str, Any] = {
        "eventID": uuid.uuid4().hex,
        "eventName": "REMOVE",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": clock.epoch(clock.now()),
            "Keys": {"user_id": old_image["user_id"], "sk": old_image["sk"]},
            "OldImage": old_image,
            "SequenceNumber": sequence_number,
            "SizeBytes": 512,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": f"{table_arn}/stream/2026-11-25T00:00:00.000",
    }
    if by_ttl:
        record["userIdentity"] = dict(TTL_IDENTITY)
    return record


def owned_ids(dynamodb: Any, table_names: dict[str, str], user_id: str) -> set[str]:
    """The ids of the user's threads and runs (taken before a deletion, to look for leftovers after)."""
    threads = {
        row["sk"]["S"].split("#", 1)[1]
        for row in _scan(dynamodb, table_names["threads"])
        if row["user_id"]["S"] == user_id and row["sk"]["S"].startswith("thread#")
    }
    runs = {
        row["run_id"]["S"]
        for row in _scan(dynamodb, table_names["runs"])
        if row.get("user_id", {}).get("S") == user_id
    }
    return threads | runs


def leftovers(
    dynamodb: Any, s3: Any, bucket: str, table_names: dict[str, str], user_id: str, ids: set[str]
) -> list[str]:
    """Every item and object of ``user_id`` or naming one of ``ids`` (thread and run ids), as readable
    strings: empty when nothing of theirs is left."""
    found = []
    for logical, name in table_names.items():
        for row in _scan(dynamodb, name):
            values = {value.get("S") for value in row.values() if isinstance(value, dict)}
            keys = {row.get("sk", {}).get("S", "").split("#", 1)[-1]}
            if user_id in values or ids & (values | keys):
                found.append(f"{logical}: {row}")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            if any(part in item["Key"] for part in ids):
                found.append(f"s3: {item['Key']}")
    return found


def _scan(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    return [row for page in dynamodb.get_paginator("scan").paginate(TableName=table) for row in page["Items"]]


def table(table_names: dict[str, str], logical: str) -> Any:
    """A boto3 Table of the local stack (moto is process-wide, so the test reaches it directly)."""
    return boto3.resource("dynamodb", region_name="us-east-1").Table(table_names[logical])
