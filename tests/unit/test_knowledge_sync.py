"""The knowledge sync over fakes: idempotent (a second sync uploads nothing), a changed document replaces
exactly its file, a removed one is deleted upstream, and bad documents are refused by name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO

import pytest
from threadrunner.assistant_definitions import AssistantConfig
from threadrunner.assistant_knowledge import MAX_DOCUMENT_BYTES
from threadrunner.assistant_validation import AssistantDefinitionError, check_paths
from threadrunner.hosted_tools import HostedToolPolicy
from threadrunner.knowledge_sync import KnowledgeError, document_reader, sync_all, sync_assistant
from threadrunner.stores.knowledge import KnowledgeStoreRecord


class FakeVectorStores:
    def __init__(self) -> None:
        self.stores: dict[str, set[str]] = {}
        self.files: dict[str, bytes] = {}
        self.uploads: list[str] = []  # filenames, in order
        self.deleted_files: list[str] = []
        self._next = 0

    def _id(self, prefix: str) -> str:
        self._next += 1
        return f"{prefix}_{self._next}"

    def create_store(self, name: str, metadata: dict[str, str], *, expires_after_days: int | None) -> str:
        store_id = self._id("vs")
        self.stores[store_id] = set()
        return store_id

    def store_exists(self, vector_store_id: str) -> bool:
        return vector_store_id in self.stores

    def delete_store(self, vector_store_id: str) -> None:
        self.stores.pop(vector_store_id, None)

    def upload(self, filename: str, stream: BinaryIO, content_type: str) -> str:
        file_id = self._id("file")
        self.files[file_id] = stream.read()
        self.uploads.append(filename)
        return file_id

    def attach(self, vector_store_id: str, file_id: str) -> None:
        self.stores[vector_store_id].add(file_id)

    def detach(self, vector_store_id: str, file_id: str) -> None:
        self.stores[vector_store_id].discard(file_id)

    def delete_file(self, file_id: str) -> None:
        self.files.pop(file_id, None)
        self.deleted_files.append(file_id)


class FakeRecords:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str], KnowledgeStoreRecord] = {}

    def get(self, environment: str, engine: str, assistant: str) -> KnowledgeStoreRecord | None:
        return self.items.get((environment, engine, assistant))

    def put(self, record: KnowledgeStoreRecord) -> None:
        self.items[(record.environment, record.engine, record.assistant)] = record

    def delete(self, environment: str, engine: str, assistant: str) -> None:
        self.items.pop((environment, engine, assistant), None)


def config(*documents: str) -> AssistantConfig:
    return AssistantConfig.model_validate(
        {"name": "handbook", "instructions": "x", "knowledge": list(documents)}
    )


def sync(repo: Path, upstream: FakeVectorStores, records: FakeRecords, *documents: str):  # type: ignore[no-untyped-def]
    return sync_assistant(
        config(*documents),
        environment="dev",
        engine="responses",
        upstream=upstream,
        records=records,
        read=document_reader(repo),
    )


def test_a_second_sync_uploads_nothing_a_change_replaces_its_file_and_a_removal_deletes_it(
    tmp_path: Path,
) -> None:
    # Given two documents in the repository
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/a.md").write_text("# A\nholidays")
    (tmp_path / "docs/b.txt").write_text("expenses")
    upstream, records = FakeVectorStores(), FakeRecords()

    # When synced, Then both are uploaded into one new store
    first = sync(tmp_path, upstream, records, "docs/a.md", "docs/b.txt")
    assert first.store_created and sorted(first.uploaded) == ["docs/a.md", "docs/b.txt"]
    store = first.vector_store_id
    assert store is not None and len(upstream.stores[store]) == 2

    # When synced again, Then nothing is uploaded or deleted
    again = sync(tmp_path, upstream, records, "docs/a.md", "docs/b.txt")
    assert not again.changed and upstream.uploads == ["a.md", "b.txt"] and upstream.deleted_files == []

    # When one document changes, Then exactly its file is replaced (uploaded, old one deleted upstream)
    old_a = records.get("dev", "responses", "handbook").documents["docs/a.md"].upstream_file_id  # type: ignore[union-attr]
    (tmp_path / "docs/a.md").write_text("# A\nholidays: 28 days")
    changed = sync(tmp_path, upstream, records, "docs/a.md", "docs/b.txt")
    assert changed.replaced == ["docs/a.md"] and changed.uploaded == [] and changed.vector_store_id == store
    assert upstream.uploads == ["a.md", "b.txt", "a.md"] and upstream.deleted_files == [old_a]
    assert old_a not in upstream.stores[store] and len(upstream.stores[store]) == 2

    # When one is removed from the YAML, Then it is detached and deleted upstream
    b_file = records.get("dev", "responses", "handbook").documents["docs/b.txt"].upstream_file_id  # type: ignore[union-attr]
    removed = sync(tmp_path, upstream, records, "docs/a.md")
    assert removed.deleted == ["docs/b.txt"] and b_file in upstream.deleted_files
    assert b_file not in upstream.stores[store]

    # When the assistant lists none any more, Then its store and files go
    gone = sync(tmp_path, upstream, records)
    assert gone.store_deleted and store not in upstream.stores and records.items == {}


def test_a_store_lost_upstream_is_made_again(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("text")
    upstream, records = FakeVectorStores(), FakeRecords()
    first = sync(tmp_path, upstream, records, "a.md")
    upstream.stores.clear()  # deleted by hand, or a new emulator
    again = sync(tmp_path, upstream, records, "a.md")
    assert (
        again.store_created and again.vector_store_id != first.vector_store_id and again.uploaded == ["a.md"]
    )


def test_an_empty_or_missing_document_stops_the_sync_naming_it_before_anything_changes(
    tmp_path: Path,
) -> None:
    (tmp_path / "empty.md").write_text("")
    upstream, records = FakeVectorStores(), FakeRecords()
    with pytest.raises(KnowledgeError, match=r"empty\.md: the document is empty"):
        sync(tmp_path, upstream, records, "empty.md")
    with pytest.raises(KnowledgeError, match=r"missing\.md: cannot be read"):
        sync(tmp_path, upstream, records, "missing.md")
    assert upstream.uploads == [] and upstream.stores == {}


def test_sync_all_skips_assistants_without_knowledge_and_syncs_the_fallback_engine_too(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.md").write_text("text")
    plain = AssistantConfig.model_validate({"name": "plain", "instructions": "x"})
    upstream, records = FakeVectorStores(), FakeRecords()
    reports = sync_all(
        [plain, config("a.md")],
        environment="dev",
        default_engine="responses",
        fallback_engine="assistants",
        upstream_for=lambda engine: upstream,
        records=records,
        read=document_reader(tmp_path),
    )
    assert [(r.assistant, r.engine) for r in reports] == [
        ("handbook", "responses"),
        ("handbook", "assistants"),
    ]


# Validation: at synth, at local start and in `threadrunner assistants validate`, with file:line:key.


def write_definition(root: Path, text: str) -> Path:
    (root / "assistants").mkdir(exist_ok=True)
    path = root / "assistants" / "handbook.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("knowledge", "named"),
    [
        (
            "[docs/sales.csv]",
            r"handbook\.yaml:3: knowledge\[0\]: 'sales\.csv': file_search cannot read \.csv",
        ),
        (
            "[docs/missing.md]",
            r"handbook\.yaml:3: knowledge\[0\]: docs/missing\.md: no such file in the repository",
        ),
        ("[../secret.md]", r"handbook\.yaml:3: knowledge\[0\]: .*stays inside the repository"),
        ("[docs/a.md, docs/a.md]", r"handbook\.yaml:3: knowledge: .*'docs/a\.md' is listed twice"),
        ("[s3://bucket/]", r"handbook\.yaml:3: knowledge\[0\]: .*not an S3 object"),
    ],
)
def test_bad_knowledge_is_refused_naming_file_line_and_key(
    tmp_path: Path, knowledge: str, named: str
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/a.md").write_text("a")
    path = write_definition(tmp_path, f"name: handbook\ninstructions: x\nknowledge: {knowledge}\n")
    _, problems = check_paths([path])
    assert problems, "expected a problem"
    assert any(re.search(named, str(problem)) for problem in problems), [str(p) for p in problems]


def test_too_many_documents_are_refused(tmp_path: Path) -> None:
    listed = ", ".join(f"d{i}.md" for i in range(101))
    path = write_definition(tmp_path, f"name: handbook\ninstructions: x\nknowledge: [{listed}]\n")
    _, problems = check_paths([path])
    assert any("101 documents: at most 100 per assistant" in str(problem) for problem in problems)


def test_a_document_over_the_upstream_limit_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.pdf").touch()
    with (tmp_path / "big.pdf").open("r+b") as big:
        big.truncate(MAX_DOCUMENT_BYTES + 1)  # sparse: no disk used
    path = write_definition(tmp_path, "name: handbook\ninstructions: x\nknowledge: [big.pdf]\n")
    _, problems = check_paths([path])
    assert any("knowledge[0]: big.pdf:" in str(p) and "more than the" in str(p) for p in problems)


def test_knowledge_on_the_chat_engine_is_refused_its_own_or_the_environments(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("a")
    own = write_definition(tmp_path, "name: handbook\ninstructions: x\nengine: chat\nknowledge: [a.md]\n")
    _, problems = check_paths([own])
    assert len(problems) == 1
    assert str(problems[0]).endswith(
        "handbook.yaml:3: engine: the chat engine has no retrieval store for knowledge documents "
        "(use responses or assistants)"
    )
    environment = write_definition(tmp_path, "name: handbook\ninstructions: x\nknowledge: [a.md]\n")
    assert check_paths([environment])[1] == []
    _, problems = check_paths([environment], HostedToolPolicy(engine="chat"))
    assert len(problems) == 1 and ":3: knowledge: the chat engine has no retrieval store" in str(problems[0])
    with pytest.raises(AssistantDefinitionError):
        from threadrunner.assistant_validation import validate_assistants

        validate_assistants(tmp_path / "assistants", HostedToolPolicy(engine="chat"))


def test_the_sample_handbook_assistant_is_valid() -> None:
    from threadrunner.assistant_validation import validate_assistants
    from threadrunner.settings import ToolSettings

    configs = {c.name: c for c in validate_assistants(ToolSettings().assistants_dir)}
    assert configs["handbook"].knowledge == ["assistants/knowledge/handbook.md"]
