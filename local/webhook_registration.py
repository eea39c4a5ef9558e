"""Register the deployment's webhook endpoint upstream and keep its signing secret in Secrets Manager.

``register`` is idempotent: it finds its endpoint by name (every page of ``client.webhooks.list``) and
- creates it when there is none (the four response events), storing the secret the create returns;
- updates it when its URL changed, or when it misses one of the four events;
- rotates its secret when Secrets Manager holds none (the only way to learn a secret again), storing the new one;
- else changes nothing, and writes nothing.

The secret is stored as ``{"webhook_secret": "whsec_..."}`` (``put_secret_value``, or ``create_secret`` when
the secret does not exist yet). It never reaches a return value, a log line or an exception message.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from openai import OpenAI
from pydantic import BaseModel, ConfigDict

EVENT_TYPES: tuple[Any, ...] = (
    "response.completed",
    "response.failed",
    "response.cancelled",
    "response.incomplete",
)
SECRET_FIELD = "webhook_secret"  # noqa: S105 - the JSON key the secret is stored under


class Outcome(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    secret_rotated = "secret_rotated"  # noqa: S105 - an outcome, not a secret


class Registration(BaseModel):
    """What ``register`` did; ``outcome`` is ``secret_rotated`` when it also updated the URL (``url_updated``)."""

    model_config = ConfigDict(frozen=True)

    endpoint_id: str
    outcome: Outcome
    url: str
    url_updated: bool = False


def endpoint_name(environment: str) -> str:
    return f"threadrunner-{environment}"


def register(
    openai_client: OpenAI, secretsmanager_client: Any, *, name: str, url: str, secret_name: str
) -> Registration:
    """Make the endpoint ``name`` deliver the response events to ``url``, its secret in ``secret_name``."""
    endpoint = next((found for found in openai_client.webhooks.list(limit=100) if found.name == name), None)
    if endpoint is None:
        created = openai_client.webhooks.create(name=name, url=url, event_types=list(EVENT_TYPES))
        _store_secret(secretsmanager_client, secret_name, created.signing_secret)
        return Registration(endpoint_id=created.id, outcome=Outcome.created, url=created.url)
    url_updated = False
    if endpoint.url != url or not set(EVENT_TYPES) <= set(endpoint.event_types):
        event_types = list(dict.fromkeys([*endpoint.event_types, *EVENT_TYPES]))
        openai_client.webhooks.update(endpoint.id, url=url, event_types=event_types)
        url_updated = True
    if not stored_secret(secretsmanager_client, secret_name):
        rotated = openai_client.webhooks.rotate_secret(endpoint.id)
        _store_secret(secretsmanager_client, secret_name, rotated.signing_secret)
        return Registration(
            endpoint_id=endpoint.id, outcome=Outcome.secret_rotated, url=url, url_updated=url_updated
        )
    outcome = Outcome.updated if url_updated else Outcome.unchanged
    return Registration(endpoint_id=endpoint.id, outcome=outcome, url=url, url_updated=url_updated)


def stored_secret(secretsmanager_client: Any, secret_name: str) -> str:
    """The signing secret in ``secret_name`` (bare or as JSON), or "" when it is missing or empty."""
    return read_secret_field(secretsmanager_client, secret_name, SECRET_FIELD)


def read_secret_field(secretsmanager_client: Any, secret_name: str, field: str) -> str:
    """``field`` of a JSON secret, or the whole bare value; "" when the secret or its value is missing."""
    try:
        value = str(secretsmanager_client.get_secret_value(SecretId=secret_name).get("SecretString") or "")
    except secretsmanager_client.exceptions.ResourceNotFoundException:  # no secret, or no value yet
        return ""
    value = value.strip()
    if value.startswith("{"):
        try:
            value = str(json.loads(value).get(field) or "")
        except ValueError:
            return ""
    return value.strip()


def _store_secret(secretsmanager_client: Any, secret_name: str, secret: str) -> None:
    value = json.dumps({SECRET_FIELD: secret})
    try:
        secretsmanager_client.put_secret_value(SecretId=secret_name, SecretString=value)
    except secretsmanager_client.exceptions.ResourceNotFoundException:
        secretsmanager_client.create_secret(
            Name=secret_name,
            SecretString=value,
            Description='threadrunner: the OpenAI webhook signing secret, as {"webhook_secret": "whsec_..."}',
        )
