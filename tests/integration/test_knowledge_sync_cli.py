"""``threadrunner knowledge sync --env ENV`` against moto (the stack, its secret, its runs table) and the
emulator's vector stores: the deployed environment's assistants are checked as synth checks them, a second run
uploads nothing, and every failure is one line naming what is wrong, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from threadrunner.stores.knowledge import KnowledgeStore
from typer.testing import CliRunner

from local.cli import app
from local.emulator import EmulatorServer
from local.resources import create_tables

ENV = "dev"
REGION = "us-east-1"
KEY_SECRET = f"threadrunner/{ENV}/openai-api-key"
# The stack as CloudFormation lists it: the runs table under the Storage construct's logical id.
STACK_TEMPLATE = {
    "Resources": {
        "StorageRunsTableA1B2C3": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [
                    {"AttributeName": "run_id", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": [
                    {"AttributeName": "run_id", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
            },
        }
    }
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        session.client("secretsmanager").create_secret(
            Name=KEY_SECRET, SecretString=json.dumps({"api_key": "sk-test"})
        )
        yield session


def sync(emulator: EmulatorServer, *extra: str) -> Any:
    return CliRunner().invoke(
        app, ["knowledge", "sync", "--env", ENV, "--base-url", emulator.base_url, *extra]
    )


def test_a_deployed_stack_is_synced_once_and_a_second_run_uploads_nothing(
    aws: boto3.session.Session, emulator: EmulatorServer
) -> None:
    # Given the deployed stack (its runs table found through CloudFormation)
    aws.client("cloudformation").create_stack(
        StackName=f"threadrunner-{ENV}", TemplateBody=json.dumps(STACK_TEMPLATE)
    )
    [table_name] = aws.client("dynamodb").list_tables()["TableNames"]
    # When synced
    first = sync(emulator)
    # Then the handbook went up into a store, which the stack's runs table records
    assert first.exit_code == 0, first.output
    assert "handbook (responses): uploaded 1" in first.output
    record = KnowledgeStore(aws.resource("dynamodb").Table(table_name)).get(ENV, "responses", "handbook")
    assert record is not None and record.vector_store_id in first.output
    uploads = [e for e in emulator.exchanges if e.method == "POST" and e.path == "/v1/files"]
    assert len(uploads) == 1
    # When synced again, Then nothing is uploaded
    again = sync(emulator)
    assert again.exit_code == 0, again.output
    assert "handbook (responses): unchanged (1 documents)" in again.output
    assert len([e for e in emulator.exchanges if e.method == "POST" and e.path == "/v1/files"]) == 1


def test_a_named_runs_table_is_used_without_the_stack(
    aws: boto3.session.Session, emulator: EmulatorServer
) -> None:
    names = create_tables(aws.client("dynamodb"), "named")
    result = sync(emulator, "--runs-table", names["runs"])
    assert result.exit_code == 0, result.output
    assert KnowledgeStore(aws.resource("dynamodb").Table(names["runs"])).get(ENV, "responses", "handbook")


@pytest.mark.parametrize(
    ("prepare", "expected"),
    [
        (lambda session: None, "the stack threadrunner-dev"),
        (
            lambda session: session.client("secretsmanager").put_secret_value(
                SecretId=KEY_SECRET, SecretString="{}"
            ),
            f"no upstream API key in the secret {KEY_SECRET}",
        ),
    ],
    ids=["no stack", "no key"],
)
def test_a_failure_is_one_line_naming_it(
    aws: boto3.session.Session, emulator: EmulatorServer, prepare: Any, expected: str
) -> None:
    prepare(aws)
    result = sync(emulator)
    assert result.exit_code == 1
    assert expected in result.output and "Traceback" not in result.output
    assert [e for e in emulator.exchanges if e.method == "POST"] == []


def test_an_unknown_environment_is_refused_naming_the_known_ones(emulator: EmulatorServer) -> None:
    result = CliRunner().invoke(app, ["knowledge", "sync", "--env", "nope", "--base-url", emulator.base_url])
    assert result.exit_code == 1
    assert "unknown environment 'nope'" in result.output and "dev" in result.output
