"""Local DynamoDB transactions (local.atomic_dynamodb): all or nothing, like the real service, and a
transaction copies only the items it names, not its tables."""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from local.atomic_dynamodb import atomic_dynamodb

TABLE = "transactions"


@pytest.fixture
def client() -> Any:
    with mock_aws(), atomic_dynamodb():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        yield dynamodb


def item(pk: str, sk: str, **values: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}} | {name: {"S": value} for name, value in values.items()}


def everything(client: Any) -> list[dict[str, Any]]:
    return sorted(
        client.scan(TableName=TABLE)["Items"], key=lambda found: (found["pk"]["S"], found["sk"]["S"])
    )


def stream_records(client: Any) -> list[str]:
    """The table's stream as moto keeps it (moto serves no DynamoDB Streams API): event names and new images."""
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(TABLE)
    records = [record.record for record in table.stream_shard.items]
    return [f"{record['eventName']} {record['dynamodb'].get('NewImage')}" for record in records]


def test_a_cancelled_transaction_leaves_every_item_and_the_stream_as_they_were(client: Any) -> None:
    # Given two items
    client.put_item(TableName=TABLE, Item=item("a", "1", state="old"))
    client.put_item(TableName=TABLE, Item=item("a", "2", state="kept"))
    before, records_before = everything(client), stream_records(client)
    # When a transaction updates one, deletes the other and adds a third, but its last condition fails
    with pytest.raises(ClientError) as cancelled:
        client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                        "UpdateExpression": "SET #s = :new",
                        "ExpressionAttributeNames": {"#s": "state"},
                        "ExpressionAttributeValues": {":new": {"S": "new"}},
                    }
                },
                {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "a"}, "sk": {"S": "2"}}}},
                {"Put": {"TableName": TABLE, "Item": item("b", "1", state="added")}},
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": "z"}, "sk": {"S": "0"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    # Then it is cancelled naming the failed condition, and nothing of it is left: items nor stream records
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [reason["Code"] for reason in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert everything(client) == before
    assert stream_records(client) == records_before


def test_a_transaction_whose_conditions_hold_writes_everything(client: Any) -> None:
    client.put_item(TableName=TABLE, Item=item("a", "1", state="old"))
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": item("a", "1", state="new")}},
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": item("a", "2", state="added"),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
    )
    assert everything(client) == [item("a", "1", state="new"), item("a", "2", state="added")]
    assert [record.split()[0] for record in stream_records(client)] == ["INSERT", "MODIFY", "INSERT"]


def test_a_transaction_copies_the_items_it_names_not_its_table(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a table of 50 items
    for n in range(50):
        client.put_item(TableName=TABLE, Item=item("bulk", f"{n:02}", state="x"))
    copied: list[str] = []
    real_deepcopy = copy.deepcopy

    def counting_deepcopy(value: Any, memo: Any = None) -> Any:
        copied.append(type(value).__name__)
        return real_deepcopy(value, memo)

    monkeypatch.setattr(copy, "deepcopy", counting_deepcopy)
    # When a transaction writes one item
    client.transact_write_items(TransactItems=[{"Put": {"TableName": TABLE, "Item": item("one", "1")}}])
    # Then no table was copied, only what it names (an absent item: nothing)
    assert "Table" not in copied
    assert copied.count("Item") <= 1
