"""``POST /v1/webhooks/openai``: OpenAI's Standard Webhooks (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``), verified with the SDK's ``client.webhooks.unwrap`` against the signing secret
(``whsec_...``) kept in Secrets Manager, then handed to threadrunner.workflow.completion.

A bad signature or a timestamp outside the SDK's 300 s tolerance answers 401 before anything is read or
written. Every verified event answers 200, whatever it did (an unknown response id, a duplicate, a late one):
a non-2xx answer would only make OpenAI retry for up to 72 h.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities import parameters
from pydantic_settings import BaseSettings, SettingsConfigDict

from threadrunner.stores.response_waits import ResponseWaitStore
from threadrunner.workflow.completion import handle_response_event

_CACHE_SECONDS = 300


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="THREADRUNNER_", frozen=True, extra="ignore")

    openai_webhook_secret_name: str = "threadrunner/openai-webhook-secret"  # noqa: S105 - a name


def webhook_secret(secret_name: str) -> str:
    """The signing secret: the bare ``whsec_...`` or ``{"webhook_secret": "whsec_..."}``."""
    value = parameters.get_secret(secret_name, max_age=_CACHE_SECONDS)
    if isinstance(value, bytes):
        value = value.decode()
    value = str(value).strip()
    if value.startswith("{"):
        value = str(json.loads(value).get("webhook_secret", ""))
    if not value:
        raise ValueError(f"the secret {secret_name} holds no webhook secret")
    return value


def _response(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def handle_http(
    event: Mapping[str, Any], *, secret: Callable[[], str], waits: ResponseWaitStore, stepfunctions: Any
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event -> its answer."""
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
    from openai import (
        InvalidWebhookSignatureError,
        OpenAI,
    )  # only here: handlers keep openai out of cold starts

    client = OpenAI(api_key="unused", webhook_secret=secret(), max_retries=0)  # makes no request
    try:
        unwrapped = client.webhooks.unwrap(raw, headers)
    except (InvalidWebhookSignatureError, ValueError):  # forged, stale, missing headers, not JSON
        return _response(
            401, {"error": {"code": "invalid_signature", "message": "invalid webhook signature"}}
        )
    data = getattr(unwrapped, "data", None)
    outcome = handle_response_event(
        str(getattr(unwrapped, "type", "")),
        getattr(data, "id", None),
        waits=waits,
        stepfunctions=stepfunctions,
    )
    return _response(
        200,
        {
            "received": True,
            "resumed": outcome.resumed,
            "duplicate": outcome.duplicate,
            "ignored": outcome.ignored,
        },
    )


def signed_headers(secret: str, webhook_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The Standard Webhooks headers for ``body`` (what OpenAI sends; the local emulator and tests sign so)."""
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
