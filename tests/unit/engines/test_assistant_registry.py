"""The assistant registry's decisions, with an in-memory record store and upstream (no network, no AWS)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from threadrunner import clock
from threadrunner.engines.assistant_sync import AssistantRegistry
from threadrunner.engines.base import AssistantDefinition, ToolSpec
from threadrunner.errors import UpstreamError
from threadrunner.stores.upstream_assistants import UpstreamAssistant

ANALYST = AssistantDefinition(
    name="data-analyst",
    instructions="Be careful.",
    model="gpt-4.1-mini",
    tools=[ToolSpec(name="get_table_schema", description="Columns.", parameters={"type": "object"})],
)
CHANGED = ANALYST.model_copy(update={"instructions": "Be terse."})


@dataclass
class FakeRecords:
    """Conditional writes like DynamoDB's; ``interfere`` lets a test play another writer before a write."""

    items: dict[tuple[str, str], UpstreamAssistant] = field(default_factory=dict)
    reads: int = 0
    interfere: list[UpstreamAssistant | None] = field(default_factory=list)

    def get(self, environment: str, name: str) -> UpstreamAssistant | None:
        self.reads += 1
        return self.items.get((environment, name))

    def record(self, assistant: UpstreamAssistant, *, replacing: UpstreamAssistant | None) -> bool:
        key = (assistant.environment, assistant.name)
        if self.interfere:
            other = self.interfere.pop(0)
            if other is not None:
                self.items[key] = other
        current = self.items.get(key)
        seen = None if current is None else (current.upstream_id, current.content_hash)
        wanted = None if replacing is None else (replacing.upstream_id, replacing.content_hash)
        if seen != wanted:
            return False
        self.items[key] = assistant
        return True

    def forget(self, assistant: UpstreamAssistant) -> bool:
        key = (assistant.environment, assistant.name)
        if key in self.items and self.items[key].upstream_id == assistant.upstream_id:
            del self.items[key]
            return True
        return False


@dataclass
class FakeUpstream:
    assistants: dict[str, str] = field(default_factory=dict)  # id -> content hash
    calls: list[str] = field(default_factory=list)

    def create_assistant(self, definition: AssistantDefinition) -> str:
        upstream_id = f"asst_{len(self.calls) + 1}"
        self.calls.append(f"create {upstream_id}")
        self.assistants[upstream_id] = definition.content_hash
        return upstream_id

    def update_assistant(self, upstream_id: str, definition: AssistantDefinition) -> bool:
        self.calls.append(f"update {upstream_id}")
        if upstream_id not in self.assistants:
            return False
        self.assistants[upstream_id] = definition.content_hash
        return True

    def delete_assistant(self, upstream_id: str) -> None:
        self.calls.append(f"delete {upstream_id}")
        self.assistants.pop(upstream_id, None)


def _recorded(upstream_id: str, definition: AssistantDefinition) -> UpstreamAssistant:
    return UpstreamAssistant(
        name=definition.name,
        environment="test",
        upstream_id=upstream_id,
        content_hash=definition.content_hash,
        synced_at=clock.now(),
    )


def test_the_first_use_creates_and_records_and_later_uses_ask_nobody() -> None:
    records, upstream = FakeRecords(), FakeUpstream()
    registry = AssistantRegistry(records, "test")
    assert registry.upstream_id(ANALYST, upstream) == "asst_1"
    reads = records.reads
    assert [registry.upstream_id(ANALYST, upstream) for _ in range(3)] == ["asst_1"] * 3
    assert upstream.calls == ["create asst_1"]
    assert records.reads == reads  # a warm container reads no record either


def test_a_changed_definition_updates_the_recorded_assistant() -> None:
    records, upstream = FakeRecords(), FakeUpstream()
    AssistantRegistry(records, "test").upstream_id(ANALYST, upstream)
    assert AssistantRegistry(records, "test").upstream_id(CHANGED, upstream) == "asst_1"
    assert upstream.calls == ["create asst_1", "update asst_1"]
    assert records.items[("test", "data-analyst")].content_hash == CHANGED.content_hash


def test_the_content_hash_covers_what_the_model_sees() -> None:
    hashes = {
        ANALYST.content_hash,
        CHANGED.content_hash,
        ANALYST.model_copy(update={"model": "gpt-5-mini"}).content_hash,
        ANALYST.model_copy(update={"tools": []}).content_hash,
    }
    assert len(hashes) == 4
    assert ANALYST.model_copy().content_hash == ANALYST.content_hash


def test_losing_the_first_use_race_deletes_ours_and_uses_the_winners() -> None:
    # Given another container that records its assistant between our create and our record
    records, upstream = FakeRecords(interfere=[_recorded("asst_winner", ANALYST)]), FakeUpstream()
    upstream.assistants["asst_winner"] = ANALYST.content_hash
    # Then we use the winner's and leave nothing of ours behind
    assert AssistantRegistry(records, "test").upstream_id(ANALYST, upstream) == "asst_winner"
    assert upstream.calls == ["create asst_1", "delete asst_1"]
    assert set(upstream.assistants) == {"asst_winner"}


def test_an_assistant_gone_upstream_is_created_again() -> None:
    records, upstream = FakeRecords(), FakeUpstream()
    records.items[("test", "data-analyst")] = _recorded("asst_gone", ANALYST)
    assert AssistantRegistry(records, "test").upstream_id(CHANGED, upstream) == "asst_2"
    assert upstream.calls == ["update asst_gone", "create asst_2"]
    assert records.items[("test", "data-analyst")].upstream_id == "asst_2"


def test_forget_drops_the_record_only_if_it_still_names_that_assistant() -> None:
    records, upstream = FakeRecords(), FakeUpstream()
    registry = AssistantRegistry(records, "test")
    registry.upstream_id(ANALYST, upstream)
    registry.forget(ANALYST, "asst_other")
    assert records.items[("test", "data-analyst")].upstream_id == "asst_1"
    registry.forget(ANALYST, "asst_1")
    assert records.items == {}
    assert registry.upstream_id(ANALYST, upstream) == "asst_2"  # not answered from memory


def test_a_record_that_keeps_changing_gives_up() -> None:
    # Given other writers that change the record before every one of our writes
    churn = [_recorded(f"asst_other{n}", CHANGED.model_copy(update={"model": f"m{n}"})) for n in range(3)]
    records, upstream = FakeRecords(interfere=list(churn)), FakeUpstream()
    with pytest.raises(UpstreamError, match="keeps changing"):
        AssistantRegistry(records, "test").upstream_id(ANALYST, upstream)
    assert sum(call.startswith("create") for call in upstream.calls) == 3
    assert upstream.assistants == {}  # each one we created was deleted when its record lost
