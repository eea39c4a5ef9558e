"""Assistants as code, synced upstream: one upstream assistant per definition and environment, created at
first use, updated when the definition changes, and one only when first uses race.

The real SDK against the emulator (every exchange validated against the OpenAPI description), the records
in moto DynamoDB.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from openai import OpenAI
from threadrunner.engines.assistant_sync import AssistantRegistry
from threadrunner.engines.assistants_v2 import AssistantsEngine
from threadrunner.engines.base import AssistantDefinition, RunRequest, ToolSpec
from threadrunner.stores.upstream_assistants import UpstreamAssistant, UpstreamAssistantStore

from local.emulator import EmulatorServer
from tests.support.aws import moto_tables

pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # SDK calls in the tests

ANALYST = AssistantDefinition(
    name="data-analyst",
    description="Answers questions with SQL.",
    instructions="You are a careful data analyst.",
    model="gpt-4.1-mini",
    tools=[
        ToolSpec(name="get_table_schema", description="Columns of one table.", parameters={"type": "object"})
    ],
)


class AtomicStore(UpstreamAssistantStore):
    """DynamoDB applies a conditional write atomically; moto serving several threads does not promise it."""

    _lock = threading.Lock()

    def record(self, assistant: UpstreamAssistant, *, replacing: UpstreamAssistant | None) -> bool:
        with self._lock:
            return super().record(assistant, replacing=replacing)


@pytest.fixture
def runs_table() -> Iterator[str]:
    with moto_tables() as tables:
        yield tables["runs"].name


def _cold_registry(table_name: str) -> AssistantRegistry:
    """What a new Lambda container builds: nothing remembered in memory."""
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(table_name)
    return AssistantRegistry(AtomicStore(table), "test")


def _start(engine: AssistantsEngine, definition: AssistantDefinition, client: OpenAI) -> str:
    """Start a run on a new thread; returns the assistant it ran with."""
    thread_id = engine.create_thread({})
    request = RunRequest(
        upstream_thread_id=thread_id,
        model=definition.model,
        instructions=definition.instructions,
        tools=definition.tools,
        assistant=definition,
    )
    run_id = engine.start(request, "hello")
    return client.beta.threads.runs.retrieve(run_id, thread_id=thread_id).assistant_id


def _assistant_calls(emulator: EmulatorServer) -> list[tuple[str, str]]:
    return [(e.method, e.path) for e in emulator.exchanges if e.path.startswith("/v1/assistants")]


def test_many_runs_in_many_containers_share_one_upstream_assistant(
    openai_client: OpenAI, emulator: EmulatorServer, runs_table: str
) -> None:
    # When five runs start, each in a cold container, and five more in a warm one
    def cold_engine() -> AssistantsEngine:
        return AssistantsEngine(openai_client, _cold_registry(runs_table))

    used = {_start(cold_engine(), ANALYST, openai_client) for _ in range(5)}
    warm = AssistantsEngine(openai_client, _cold_registry(runs_table))
    used |= {_start(warm, ANALYST, openai_client) for _ in range(5)}
    # Then they all ran with one assistant, created once, never updated
    assert len(used) == 1
    assert _assistant_calls(emulator) == [("POST", "/v1/assistants")]
    assistants = openai_client.beta.assistants.list().data
    assert [a.id for a in assistants] == list(used)
    assert assistants[0].instructions == ANALYST.instructions
    assert assistants[0].metadata == {
        "threadrunner_assistant": "data-analyst",
        "threadrunner_content_hash": ANALYST.content_hash,
    }


def test_a_changed_definition_updates_the_same_upstream_assistant(
    openai_client: OpenAI, emulator: EmulatorServer, runs_table: str
) -> None:
    # Given an assistant synced and used
    engine = AssistantsEngine(openai_client, _cold_registry(runs_table))
    original = _start(engine, ANALYST, openai_client)
    # When its instructions change (a deploy) and it is used again, by a warm and by a cold container
    changed = ANALYST.model_copy(update={"instructions": "You are a terse data analyst."})
    assert changed.content_hash != ANALYST.content_hash
    assert _start(engine, changed, openai_client) == original
    cold = AssistantsEngine(openai_client, _cold_registry(runs_table))
    assert _start(cold, changed, openai_client) == original
    # Then the same upstream assistant was updated once, and holds the new instructions
    assert _assistant_calls(emulator) == [("POST", "/v1/assistants"), ("POST", f"/v1/assistants/{original}")]
    updated = openai_client.beta.assistants.retrieve(original)
    assert updated.instructions == "You are a terse data analyst."
    assert (
        updated.metadata is not None and updated.metadata["threadrunner_content_hash"] == changed.content_hash
    )


class RacingUpstream:
    """Every racer creates its assistant before any of them records one: the worst interleaving."""

    def __init__(self, engine: AssistantsEngine, barrier: threading.Barrier) -> None:
        self._engine = engine
        self._barrier = barrier

    def create_assistant(self, definition: AssistantDefinition) -> str:
        created = self._engine.create_assistant(definition)
        self._barrier.wait(timeout=10)
        return created

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def test_concurrent_first_uses_end_with_one_upstream_assistant(
    openai_client: OpenAI, emulator: EmulatorServer, runs_table: str
) -> None:
    # Given four cold containers using the assistant for the first time at once
    racers = 4
    barrier = threading.Barrier(racers)
    engine = AssistantsEngine(openai_client, _cold_registry(runs_table))

    def first_use(_: int) -> str:
        return _cold_registry(runs_table).upstream_id(ANALYST, RacingUpstream(engine, barrier))

    with ThreadPoolExecutor(racers) as pool:
        ids = set(pool.map(first_use, range(racers)))
    # Then they agree on one assistant, and the losers deleted the ones they created
    assert len(ids) == 1
    assert [a.id for a in openai_client.beta.assistants.list().data] == list(ids)
    calls = _assistant_calls(emulator)
    assert calls.count(("POST", "/v1/assistants")) == racers
    assert len([c for c in calls if c[0] == "DELETE"]) == racers - 1
