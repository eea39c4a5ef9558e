"""The upstream API key and its webhook signing secret, read from Secrets Manager through Powertools
Parameters (cached between calls).

Neither ever goes into environment variables, logs, workflow state or error messages.
"""

from __future__ import annotations

import json
import time

from threadrunner.observability import trace_library
from threadrunner.settings import UpstreamSettings

_CACHE_SECONDS = 300
_REFRESH_SECONDS = 60
_last_refresh = -float("inf")


def openai_api_key(settings: UpstreamSettings) -> str:
    return api_key(settings.openai_secret_name)


def api_key(secret_name: str) -> str:
    """The key in ``secret_name`` (each engine may have its own upstream and key)."""
    return _read(secret_name, "api_key", refresh=False)


def webhook_secret(secret_name: str, *, refresh: bool = False) -> str:
    """The ``whsec_...`` signing secret. ``refresh`` (a signature failed: the secret may have been rotated)
    reads it again, at most once a minute: forged requests cannot turn into a Secrets Manager call each."""
    global _last_refresh
    now = time.monotonic()
    fetch = refresh and now - _last_refresh >= _REFRESH_SECONDS
    if fetch:
        _last_refresh = now
    return _read(secret_name, "webhook_secret", refresh=fetch)


def _read(secret_name: str, field: str, *, refresh: bool) -> str:
    # Imported here: Powertools Parameters imports all of boto3, which a function's INIT does without (aws.py).
    from aws_lambda_powertools.utilities import parameters

    trace_library("botocore")  # Powertools makes its own client: X-Ray traces it once botocore is patched
    value = parameters.get_secret(secret_name, max_age=_CACHE_SECONDS, force_fetch=refresh)
    if isinstance(value, bytes):
        value = value.decode()
    value = str(value).strip()
    # Operators may store the bare value or {"<field>": "..."}.
    if value.startswith("{"):
        value = str(json.loads(value).get(field, ""))
    if not value:
        raise ValueError(f"the secret {secret_name} holds no {field}")
    return value


def outbound_webhook_secret(secret_name: str) -> str:
    """The ``whsec_...`` secret threadrunner signs an outbound run webhook subscription's deliveries with: an
    operator creates the secret (``{"webhook_secret": "whsec_..."}`` or the bare value) and hands the same
    value to the receiver, which verifies with any Standard Webhooks library."""
    return _read(secret_name, "webhook_secret", refresh=False)


def mcp_headers(secret_name: str) -> dict[str, str]:
    """The HTTP headers an allow-listed MCP server needs (``{"Authorization": "Bearer ..."}``, or the same
    under ``"headers"``), from the secret its cdk.json ``mcp_servers`` entry names. Read by the model steps
    when they build a request; the headers go into that request only."""
    from aws_lambda_powertools.utilities import parameters

    trace_library("botocore")
    value = parameters.get_secret(secret_name, max_age=_CACHE_SECONDS)
    if isinstance(value, bytes):
        value = value.decode()
    try:
        parsed = json.loads(str(value))
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("headers"), dict):
        parsed = parsed["headers"]
    if not isinstance(parsed, dict) or not all(
        isinstance(key, str) and isinstance(header, str) for key, header in parsed.items()
    ):
        # Never the value itself: it is a credential.
        raise ValueError(f"the secret {secret_name} must hold a JSON object of HTTP headers (name: value)")
    return parsed
