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

    from threadrunner.engines.assistant_registry import AssistantRegistry

ENGINES = ("responses", "assistants")


def engine_for(name: str, settings: UpstreamSettings, assistants: AssistantRegistry | None = None) -> Engine:
    """The engine a thread was created with. ``assistants`` syncs assistant definitions upstream: the
    ``assistants`` engine needs it to start runs (not to poll, cancel or delete)."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}")
    from threadrunner.secrets import openai_api_key

    client = _client(openai_api_key(settings), settings)
    if name == "assistants":
        from threadrunner.engines.assistants import AssistantsEngine

        return AssistantsEngine(client, assistants)
    from threadrunner.engines.responses import ResponsesEngine

    return ResponsesEngine(client)


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
