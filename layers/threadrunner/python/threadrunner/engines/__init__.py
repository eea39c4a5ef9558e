"""Engines run the assistant/thread/run model on an upstream. See base.Engine.

Importing this package does not import ``openai`` (a second of cold start): only ``engine_for`` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

from threadrunner.engines.base import Engine
from threadrunner.settings import UpstreamSettings

if TYPE_CHECKING:
    import httpx2 as httpx
    from openai import OpenAI

    from threadrunner.engines.assistant_sync import AssistantRegistry
    from threadrunner.engines.retry import RetryPolicy
    from threadrunner.stores.chat_rounds import ChatState

ENGINES = ("responses", "assistants", "chat")


def engine_for(
    name: str,
    settings: UpstreamSettings,
    assistants: AssistantRegistry | None = None,
    chat: ChatState | None = None,
) -> Engine:
    """The engine called ``name``, on its own upstream (``settings.engine_upstreams``, else the shared one).

    ``assistants`` syncs assistant definitions upstream: the ``assistants`` engine needs it to start runs.
    ``chat`` is where the ``chat`` engine reads the message log and keeps its completions: it needs it to
    start and poll runs. Neither is needed to cancel or delete (thread cleanup)."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}")
    from threadrunner.engines.retry import RetryPolicy
    from threadrunner.secrets import api_key

    policy = RetryPolicy(
        max_attempts=settings.retry_max_attempts,
        base_seconds=settings.retry_base_seconds,
        max_backoff_seconds=settings.retry_max_backoff_seconds,
        max_retry_after_seconds=settings.retry_max_retry_after_seconds,
        budget_seconds=settings.retry_budget_seconds,
    )
    client = _client(
        api_key(settings.secret_name_for(name)),
        settings.base_url_for(name),
        settings.openai_timeout_seconds,
        policy,
    )
    if name == "assistants":
        from threadrunner.engines.assistants_v2 import AssistantsEngine
        from threadrunner.knowledge_lookup import default_lookup

        # file_search: the assistant's knowledge on the upstream assistant, the thread's documents on its thread.
        return AssistantsEngine(client, assistants, stores=default_lookup(name))
    if name == "chat":
        from threadrunner.engines.chat import ChatEngine

        return ChatEngine(client, chat)
    from threadrunner.engines.responses import ResponsesEngine
    from threadrunner.knowledge_lookup import default_lookup

    # file_search: the assistant's knowledge and the thread's documents, looked up per response.
    return ResponsesEngine(client, vector_store_ids=default_lookup(name))


@cache
def _client(api_key: str, base_url: str | None, timeout: float, policy: RetryPolicy) -> OpenAI:
    """One client per key and upstream (a rotated key gets a new one), reused across invocations."""
    return new_client(api_key, base_url, timeout, policy)


def new_client(
    api_key: str,
    base_url: str | None,
    timeout: float,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    wire: httpx.BaseTransport | None = None,
) -> OpenAI:
    """An SDK client whose calls are retried by engines/retry.py (the SDK's own retries are off), over
    ``wire`` (tests put faults there), else plain HTTP."""
    import httpx2
    import openai

    from threadrunner.engines.retry import RetryingTransport

    transport = RetryingTransport(wire or httpx2.HTTPTransport(), policy, sleep=sleep)
    return openai.OpenAI(
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        max_retries=0,
        http_client=openai.DefaultHttpxClient(transport=transport),
    )
