"""The upstream API key, read from Secrets Manager through Powertools Parameters (cached between calls).

It never goes into environment variables, logs, workflow state or error messages.
"""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities import parameters

from threadrunner.settings import UpstreamSettings

_CACHE_SECONDS = 300


def openai_api_key(settings: UpstreamSettings) -> str:
    return api_key(settings.openai_secret_name)


def api_key(secret_name: str) -> str:
    """The key in ``secret_name`` (each engine may have its own upstream and key)."""
    value = parameters.get_secret(secret_name, max_age=_CACHE_SECONDS)
    if isinstance(value, bytes):
        value = value.decode()
    value = str(value).strip()
    # Operators may store the bare key or {"api_key": "..."}.
    if value.startswith("{"):
        value = str(json.loads(value).get("api_key", ""))
    if not value:
        raise ValueError(f"the secret {secret_name} holds no API key")
    return value
