"""Engines run the assistant/thread/run model on an upstream. See base.Engine.

Importing this package does not import ``openai`` (a second of cold start): only ``engine_for`` does.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from threadrunner.engines.base import Engine
from threadrunner.settings import UpstreamSettings

if TYPE_CHECKING:
    from openai import OpenAI


def engine_for(name: str, settings: UpstreamSettings) -> Engine:
    """The engine a thread was created with."""
    from threadrunner.secrets import openai_api_key

    client = _client(openai_api_key(settings), settings)
    if name == "responses":
        from threadrunner.engines.responses import ResponsesEngine

        return ResponsesEngine(client)
    raise ValueError(f"unknown engine {name!r}")


@cache
def _client(api_key: str, settings: UpstreamSettings) -> OpenAI:
    """One client per key (a rotated key gets a new one), reused across invocations."""
    from openai import OpenAI

    return OpenAI(
        api_key=api_key,
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout_seconds,
        max_retries=settings.openai_poll_retries,
    )
