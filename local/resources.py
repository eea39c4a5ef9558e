"""AWS resources the CDK stack would create, made against moto for local mode and tests."""

from __future__ import annotations

from typing import Any

from threadrunner.stores.tables import ALL_TABLES, THREADS, TableSpec

# The threads table's stream, as deployed. Not the runs table's: its one reader, the event fan-out (AppSync,
# outbound webhooks), is not part of local mode, and moto keeps every stream record in memory (with the run
# items' images, hundreds of MB over the e2e suite, and a third of its time).
STREAMED_LOCALLY = frozenset({THREADS.logical_name})


def create_tables(dynamodb: Any, prefix: str) -> dict[str, str]:
    """Create every table of threadrunner.stores.tables as ``<prefix>-<logical name>``; returns logical -> name."""
    names = {}
    for spec in ALL_TABLES:
        name = f"{prefix}-{spec.logical_name}"
        dynamodb.create_table(**_table_definition(spec, name))
        if spec.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
            )
        names[spec.logical_name] = name
    return names


def _table_definition(spec: TableSpec, name: str) -> dict[str, Any]:
    attributes = {spec.partition_key, spec.sort_key}
    for index in spec.indexes:
        attributes |= {index.partition_key, index.sort_key}
    definition: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [
            {"AttributeName": spec.partition_key, "KeyType": "HASH"},
            {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
    }
    if spec.logical_name in STREAMED_LOCALLY:
        definition["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if spec.indexes:
        definition["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.partition_key, "KeyType": "HASH"},
                    {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in spec.indexes
        ]
    return definition
