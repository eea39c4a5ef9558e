"""``POST /v1/webhooks/openai``: OpenAI's Standard Webhooks (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``), verified with the SDK's ``client.webhooks.unwrap`` against the signing secret
(``whsec_...``) kept in Secrets Manager, then handed to threadrunner.workflow.completion.

A bad signature or a timestamp outside the SDK's 300 s tolerance answers 401 before anything is read or
written (503 while no secret is set: the upstream retries). Every verified event answers 200, whatever it
did (an unknown response id, a duplicate, a late one): a non-2xx answer would only make OpenAI retry for up
to 72 h.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from threadrunner.standard_webhooks import signed_headers as signed_headers  # the emulator and tests sign so
from threadrunner.stores.response_waits import ResponseWaitStore
from threadrunner.workflow.completion import handle_response_event

# The signing secret: ``secret(refresh)``; a rotated secret is read again once before a signature is refused.
SecretSource = Callable[[bool], str]


def _response(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def handle_http(
    event: Mapping[str, Any], *, secret: SecretSource, waits: ResponseWaitStore, stepfunctions: Any
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event -> its answer."""
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
    # Here, not at INIT: Powertools Parameters imports boto3.
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        unwrapped = _unwrap(raw, headers, secret(False))
        if unwrapped is None:  # perhaps signed with a secret rotated since it was cached: read it again
            unwrapped = _unwrap(raw, headers, secret(True))
    except (
        ValueError,
        GetParameterError,
    ):  # no secret yet (`threadrunner webhooks register` not run): the upstream retries later
        return _response(503, {"code": "not_configured", "message": "the webhook secret is not set yet"})
    if unwrapped is None:
        return _response(401, {"code": "invalid_signature", "message": "invalid webhook signature"})
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


def _unwrap(raw: bytes, headers: dict[str, str], secret: str) -> Any | None:
    """The verified event (the SDK's own types), or None: forged, stale, missing headers, not JSON."""
    # Only here: openai is imported on the first webhook, never at the Lambda's INIT.
    from openai import InvalidWebhookSignatureError, OpenAI

    client = OpenAI(api_key="unused", webhook_secret=secret, max_retries=0)  # makes no request
    try:
        return client.webhooks.unwrap(raw, headers)
    except (InvalidWebhookSignatureError, ValueError):
        return None
