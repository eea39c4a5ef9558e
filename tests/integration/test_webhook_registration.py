"""``threadrunner webhooks register`` and the register() behind it, against the emulator's endpoints API and
moto's Secrets Manager and CloudFormation: idempotent, and the signing secret stays out of its output.

The secret it stores must be the endpoint's real one: a webhook the emulator then signs must verify with it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from openai import OpenAI
from typer.testing import CliRunner

from local.cli import app
from local.emulator import EmulatorServer
from local.webhook_registration import EVENT_TYPES, Outcome, register
from tests.support.webhook_receiver import WebhookReceiver

ENV = "regtest"
NAME = f"threadrunner-{ENV}"
SECRET_NAME = f"threadrunner/{ENV}/openai-webhook-secret"
KEY_SECRET_NAME = f"threadrunner/{ENV}/openai-api-key"
REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


@pytest.fixture
def secretsmanager(aws: boto3.session.Session) -> Any:
    return aws.client("secretsmanager")


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def receiver(receiver_server: WebhookReceiver) -> WebhookReceiver:
    receiver_server.clear()
    return receiver_server


def stored(secretsmanager: Any) -> str:
    return str(
        json.loads(secretsmanager.get_secret_value(SecretId=SECRET_NAME)["SecretString"])["webhook_secret"]
    )


def versions(secretsmanager: Any) -> int:
    return len(secretsmanager.list_secret_version_ids(SecretId=SECRET_NAME)["Versions"])


def run(client: OpenAI, secretsmanager: Any, url: str) -> Any:
    return register(client, secretsmanager, name=NAME, url=url, secret_name=SECRET_NAME)


def delivered_event_verifies(client: OpenAI, receiver: WebhookReceiver, secret: str) -> bool:
    """Whether ``secret`` verifies the next webhook the emulator sends (a poll ends the response)."""
    before = len(receiver.received)
    response = client.responses.create(model="gpt-4.1-mini", input="Hello", background=True)
    for _ in range(5):  # the poll-based emulator ends it on the second retrieve
        if client.responses.retrieve(response.id).status == "completed":
            break
    received = receiver.wait_for(before + 1)[-1]
    try:
        OpenAI(api_key="unused", webhook_secret=secret).webhooks.unwrap(received.body, received.headers)
    except Exception:
        return False
    return True


def test_the_first_run_creates_the_endpoint_and_stores_its_secret(
    openai_client: OpenAI, secretsmanager: Any, receiver: WebhookReceiver
) -> None:
    # When registering where nothing exists yet (not even the secret)
    result = run(openai_client, secretsmanager, receiver.hook_url)

    # Then the endpoint is there, for the four response events
    [endpoint] = openai_client.webhooks.list()
    assert (result.outcome, result.endpoint_id, result.url) == (
        Outcome.created,
        endpoint.id,
        receiver.hook_url,
    )
    assert (endpoint.name, endpoint.url, sorted(endpoint.event_types)) == (
        NAME,
        receiver.hook_url,
        sorted(EVENT_TYPES),
    )
    # And the stored secret is the one the endpoint signs with
    assert delivered_event_verifies(openai_client, receiver, stored(secretsmanager))


def test_a_second_run_changes_nothing(
    openai_client: OpenAI, secretsmanager: Any, receiver: WebhookReceiver
) -> None:
    # Given a registered endpoint
    first = run(openai_client, secretsmanager, receiver.hook_url)
    before = openai_client.webhooks.retrieve(first.endpoint_id)

    # When registering again
    again = run(openai_client, secretsmanager, receiver.hook_url)

    # Then nothing changed upstream or in Secrets Manager
    assert (again.outcome, again.endpoint_id) == (Outcome.unchanged, first.endpoint_id)
    assert openai_client.webhooks.retrieve(first.endpoint_id) == before
    assert len(list(openai_client.webhooks.list())) == 1
    assert versions(secretsmanager) == 1


def test_a_changed_url_updates_the_endpoint_and_keeps_the_secret(
    openai_client: OpenAI, secretsmanager: Any, receiver: WebhookReceiver
) -> None:
    # Given an endpoint registered for an older URL
    first = run(openai_client, secretsmanager, receiver.hook_url + "?old")
    secret = stored(secretsmanager)

    # When registering the new URL
    result = run(openai_client, secretsmanager, receiver.hook_url)

    # Then the same endpoint delivers there, still signing with the stored secret
    assert (result.outcome, result.endpoint_id) == (Outcome.updated, first.endpoint_id)
    assert openai_client.webhooks.retrieve(first.endpoint_id).url == receiver.hook_url
    assert versions(secretsmanager) == 1
    assert delivered_event_verifies(openai_client, receiver, secret)


@pytest.mark.parametrize("lose_secret", ["emptied", "deleted"])
def test_a_lost_secret_is_rotated_and_stored_again(
    openai_client: OpenAI, secretsmanager: Any, receiver: WebhookReceiver, lose_secret: str
) -> None:
    # Given a registered endpoint whose secret was then lost
    first = run(openai_client, secretsmanager, receiver.hook_url)
    old_secret = stored(secretsmanager)
    if lose_secret == "emptied":
        secretsmanager.put_secret_value(SecretId=SECRET_NAME, SecretString='{"webhook_secret": ""}')
    else:
        secretsmanager.delete_secret(SecretId=SECRET_NAME, ForceDeleteWithoutRecovery=True)

    # When registering again
    result = run(openai_client, secretsmanager, receiver.hook_url)

    # Then the secret was rotated: the new one verifies the next webhook, the old one no longer does
    assert (result.outcome, result.endpoint_id) == (Outcome.secret_rotated, first.endpoint_id)
    new_secret = stored(secretsmanager)
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    assert delivered_event_verifies(openai_client, receiver, new_secret)
    assert not delivered_event_verifies(openai_client, receiver, old_secret)


def test_its_endpoint_is_found_beyond_the_first_page_and_completed_with_missing_events(
    emulator: EmulatorServer, openai_client: OpenAI, secretsmanager: Any, receiver: WebhookReceiver
) -> None:
    # Given its endpoint, made by hand for completions only, behind a full page of newer endpoints
    own = emulator.add_webhook_endpoint(receiver.hook_url, name=NAME, event_types=["response.completed"])
    secretsmanager.create_secret(
        Name=SECRET_NAME, SecretString=json.dumps({"webhook_secret": own.signing_secret})
    )
    for index in range(100):
        emulator.add_webhook_endpoint(f"{receiver.hook_url}?other={index}", name=f"other-{index}")

    # When registering
    result = run(openai_client, secretsmanager, receiver.hook_url)

    # Then that endpoint now has all four events, and no second one was made
    assert (result.outcome, result.endpoint_id) == (Outcome.updated, own.id)
    assert sorted(openai_client.webhooks.retrieve(own.id).event_types) == sorted(EVENT_TYPES)
    assert [endpoint.id for endpoint in openai_client.webhooks.list(limit=100) if endpoint.name == NAME] == [
        own.id
    ]


# The command.
def cli(*arguments: str) -> Any:
    return CliRunner().invoke(app, ["webhooks", "register", "--env", ENV, "--region", REGION, *arguments])


def put_api_key(secretsmanager: Any, value: str = '{"api_key": "sk-test"}') -> None:
    secretsmanager.create_secret(Name=KEY_SECRET_NAME, SecretString=value)


def test_the_command_registers_once_and_never_shows_the_secret(
    emulator: EmulatorServer,
    openai_client: OpenAI,
    secretsmanager: Any,
    receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given the upstream key in its secret (bare, as operators may store it)
    put_api_key(secretsmanager, "sk-test")
    caplog.set_level(logging.INFO)

    # When the command runs twice
    first = cli("--url", receiver.hook_url, "--base-url", emulator.base_url)
    second = cli("--url", receiver.hook_url, "--base-url", emulator.base_url)

    # Then it created the endpoint, then changed nothing, saying so in one line each
    assert (first.exit_code, second.exit_code) == (0, 0), first.output + second.output
    [endpoint] = openai_client.webhooks.list()
    assert first.output.startswith(
        f"created: webhook endpoint {endpoint.id} delivers to {receiver.hook_url};"
    )
    assert second.output.startswith("unchanged: ")
    assert SECRET_NAME in first.output and len(first.output.splitlines()) == 1
    # And the secret it stored appears in no output and no log
    secret = stored(secretsmanager)
    for text in (first.output, second.output, caplog.text):
        assert secret not in text
        assert secret.removeprefix("whsec_") not in text


def test_the_command_reads_the_webhook_url_from_the_stack(
    emulator: EmulatorServer, openai_client: OpenAI, aws: boto3.session.Session, secretsmanager: Any
) -> None:
    # Given a deployed stack with its API URL output, and the key
    api_url = "https://abc123.execute-api.us-east-1.amazonaws.com"
    template = {
        "Resources": {
            "Marker": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "marker", "Type": "String", "Value": "x"},
            }
        },
        "Outputs": {"ApiUrl": {"Value": api_url}, "WebhookSecretName": {"Value": SECRET_NAME}},
    }
    aws.client("cloudformation").create_stack(StackName=NAME, TemplateBody=json.dumps(template))
    put_api_key(secretsmanager)

    # When the command runs without --url
    result = cli("--base-url", emulator.base_url)

    # Then the endpoint delivers to the stack's webhook route
    assert result.exit_code == 0, result.output
    [endpoint] = openai_client.webhooks.list()
    assert endpoint.url == f"{api_url}/v1/webhooks/openai"
    assert stored(secretsmanager).startswith("whsec_")


def test_the_command_fails_in_one_line_without_a_stack(emulator: EmulatorServer, secretsmanager: Any) -> None:
    # Given the key, but no stack
    put_api_key(secretsmanager)

    # When the command runs without --url
    result = cli("--base-url", emulator.base_url)

    # Then it says so in one line, and exits 1
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"threadrunner webhooks register: no stack {NAME} in this account and region: deploy it first"
    ]


@pytest.mark.parametrize("key", [None, '{"api_key": ""}'])
def test_the_command_fails_in_one_line_without_a_key(
    emulator: EmulatorServer,
    openai_client: OpenAI,
    secretsmanager: Any,
    receiver: WebhookReceiver,
    key: str | None,
) -> None:
    # Given no key secret, or an empty one
    if key is not None:
        put_api_key(secretsmanager, key)

    # When the command runs
    result = cli("--url", receiver.hook_url, "--base-url", emulator.base_url)

    # Then it names the secret to fill, in one line, exits 1, and registered nothing
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert f"no upstream API key in the secret {KEY_SECRET_NAME}" in line
    assert list(openai_client.webhooks.list()) == []


def test_the_command_fails_in_one_line_when_the_upstream_refuses(
    secretsmanager: Any, receiver: WebhookReceiver
) -> None:
    # Given an upstream that takes another key than the stored one
    put_api_key(secretsmanager, '{"api_key": "sk-wrong-key"}')
    with EmulatorServer(api_key="sk-right-key") as upstream:
        # When the command runs
        result = cli("--url", receiver.hook_url, "--base-url", upstream.base_url)

    # Then it tells the refusal in one line, and exits 1
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("threadrunner webhooks register: the upstream refused (401): Incorrect API key")
    assert "sk-wrong-key" not in line
