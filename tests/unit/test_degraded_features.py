"""What a run goes without on its engine (threadrunner.knowledge_lookup.degraded_features): said on the run
when a fallback moves it to an engine without search or hosted tools, never silently."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from threadrunner import clock
from threadrunner.knowledge_lookup import degraded_features
from threadrunner.models.records import RunRecord
from threadrunner.stores.knowledge import KnowledgeStoreRecord

REPOSITORY_ASSISTANTS = Path(__file__).resolve().parents[2] / "assistants"
DESK = """\
name: desk
instructions: Help.
web_search: true
mcp:
  - server_label: orders
    server_url: https://mcp.example.com/mcp
"""


class Records:
    """Knowledge records: the handbook synced for the engines in ``synced``."""

    def __init__(self, *synced: str) -> None:
        self._synced = synced

    def get(self, environment: str, engine: str, assistant: str) -> KnowledgeStoreRecord | None:
        if engine not in self._synced:
            return None
        return KnowledgeStoreRecord(
            environment=environment,
            engine=engine,
            assistant=assistant,
            vector_store_id="vs_1",
            synced_at=clock.now(),
        )


def _run(assistant: str, engine: str) -> RunRecord:
    now = clock.now()
    return RunRecord(
        id="run_1",
        thread_id="thr_1",
        user_id="alice",
        assistant=assistant,
        engine=engine,
        model="gpt-4.1-mini",
        message="hello",
        created_at=now,
        deadline_at=now + timedelta(minutes=5),
        fallback_from="responses",
    )


def degraded(run: RunRecord, assistants_dir: Path, records: Records) -> list[str]:
    return degraded_features(run, assistants_dir=assistants_dir, environment="dev", knowledge=records)


def test_documents_go_without_search_on_chat_or_where_no_store_is_synced() -> None:
    assert degraded(_run("handbook", "chat"), REPOSITORY_ASSISTANTS, Records("responses", "chat")) == [
        "file_search"
    ]
    assert degraded(_run("handbook", "assistants"), REPOSITORY_ASSISTANTS, Records("responses")) == [
        "file_search"
    ]
    assert degraded(_run("handbook", "responses"), REPOSITORY_ASSISTANTS, Records("responses")) == []


def test_hosted_tools_are_missed_on_engines_without_them(tmp_path: Path) -> None:
    (tmp_path / "desk.yaml").write_text(DESK)
    assert degraded(_run("desk", "chat"), tmp_path, Records()) == ["web_search", "mcp"]
    assert degraded(_run("desk", "responses"), tmp_path, Records()) == []


def test_an_assistant_without_documents_or_hosted_tools_misses_nothing() -> None:
    assert degraded(_run("data-analyst", "chat"), REPOSITORY_ASSISTANTS, Records()) == []
