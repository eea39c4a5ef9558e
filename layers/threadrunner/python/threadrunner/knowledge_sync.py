"""Knowledge as code: each assistant's ``knowledge:`` documents, synced to its engine's retrieval store.

Per (assistant, environment, engine): one upstream vector store, kept across syncs and changed in place. A
document is uploaded once per content (SHA-256 of its bytes): a sync that finds nothing changed uploads
nothing; a changed document gets a new file, attached before the old one is detached and deleted; a
document no longer listed is detached and deleted upstream; an assistant that lists none any more loses its
store. What is upstream is recorded after every change (stores/knowledge.py), so a sync that stops half-way
is finished by the next one.

Runs at deploy time (``threadrunner knowledge sync --env ENV``, a post-deploy step) and at the local stack's
start. Documents come from the repository or S3 (``DocumentReader``); the upstream and the records are
injected.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from threadrunner import clock
from threadrunner.assistant_definitions import AssistantConfig
from threadrunner.assistant_knowledge import (
    MAX_DOCUMENT_BYTES,
    RETRIEVAL_ENGINES,
    content_type_for,
    document_filename,
    is_s3,
    size_problem,
    split_s3,
)
from threadrunner.engines.vector_stores import VectorStoreUpstream
from threadrunner.stores.knowledge import KnowledgeStoreRecord, SyncedDocument

logger = logging.getLogger(__name__)


class KnowledgeError(ValueError):
    """A document that cannot be synced (missing, empty, too large, refused by the upstream), by name."""


class KnowledgeRecords(Protocol):
    def get(self, environment: str, engine: str, assistant: str) -> KnowledgeStoreRecord | None: ...

    def put(self, record: KnowledgeStoreRecord) -> None: ...

    def delete(self, environment: str, engine: str, assistant: str) -> None: ...


DocumentReader = Callable[[str], bytes]  # source (repository path or s3://bucket/key) -> its bytes


@dataclass
class SyncReport:
    """What one assistant's sync did upstream."""

    assistant: str
    engine: str
    vector_store_id: str | None = None
    uploaded: list[str] = field(default_factory=list)  # new documents
    replaced: list[str] = field(default_factory=list)  # changed documents: a new file, the old one deleted
    deleted: list[str] = field(default_factory=list)  # documents no longer listed
    unchanged: list[str] = field(default_factory=list)
    store_created: bool = False
    store_deleted: bool = False

    @property
    def changed(self) -> bool:
        return bool(
            self.uploaded or self.replaced or self.deleted or self.store_created or self.store_deleted
        )

    def summary(self) -> str:
        if not self.changed:
            return f"{self.assistant} ({self.engine}): unchanged ({len(self.unchanged)} documents)"
        parts = [
            f"{label} {len(names)}"
            for label, names in (
                ("uploaded", self.uploaded),
                ("replaced", self.replaced),
                ("deleted", self.deleted),
                ("unchanged", self.unchanged),
            )
            if names
        ]
        store = self.vector_store_id or "no store"
        return f"{self.assistant} ({self.engine}): {', '.join(parts) or 'store removed'} -> {store}"


def engines_to_sync(config: AssistantConfig, *, default_engine: str, fallback_engine: str) -> list[str]:
    """The retrieval engines the assistant's runs may use: its own, and the fallback if it has a store."""
    engines = [config.engine or default_engine]
    if fallback_engine in RETRIEVAL_ENGINES and fallback_engine not in engines:
        engines.append(fallback_engine)
    return [engine for engine in engines if engine in RETRIEVAL_ENGINES]


def sync_assistant(
    config: AssistantConfig,
    *,
    environment: str,
    engine: str,
    upstream: VectorStoreUpstream,
    records: KnowledgeRecords,
    read: DocumentReader,
) -> SyncReport:
    """Make the upstream store of ``config`` on ``engine`` hold exactly its documents."""
    report = SyncReport(assistant=config.name, engine=engine)
    recorded = records.get(environment, engine, config.name)
    if not config.knowledge:
        if recorded is not None:
            _remove(recorded, upstream, records, report)
        return report
    # Every document is read (and checked) before anything changes upstream: a bad one stops the sync whole.
    contents = {source: _read(source, read) for source in config.knowledge}
    if recorded is not None and not upstream.store_exists(recorded.vector_store_id):
        # Deleted by hand, expired or a new server: start afresh (its files are deleted, if still there).
        for document in recorded.documents.values():
            upstream.delete_file(document.upstream_file_id)
        records.delete(environment, engine, config.name)
        recorded = None
    if recorded is None:
        store_id = upstream.create_store(
            f"threadrunner-{environment}-{config.name}",
            {"threadrunner_assistant": config.name, "threadrunner_environment": environment},
            expires_after_days=None,
        )
        recorded = KnowledgeStoreRecord(
            assistant=config.name,
            environment=environment,
            engine=engine,
            vector_store_id=store_id,
            synced_at=clock.now(),
        )
        records.put(recorded)
        report.store_created = True
    report.vector_store_id = recorded.vector_store_id
    for source, data in contents.items():
        content_hash = hashlib.sha256(data).hexdigest()
        before = recorded.documents.get(source)
        if before is not None and before.content_hash == content_hash:
            report.unchanged.append(source)
            continue
        filename = document_filename(source)
        file_id = upstream.upload(filename, io.BytesIO(data), content_type_for(source))
        try:
            upstream.attach(recorded.vector_store_id, file_id)
        except Exception:
            upstream.delete_file(file_id)  # not recorded: nothing else would ever delete it
            raise
        recorded = _recorded(
            recorded,
            source,
            SyncedDocument(content_hash=content_hash, upstream_file_id=file_id, filename=filename),
        )
        records.put(recorded)
        if before is None:
            report.uploaded.append(source)
            continue
        upstream.detach(recorded.vector_store_id, before.upstream_file_id)
        upstream.delete_file(before.upstream_file_id)
        report.replaced.append(source)
    for source in [source for source in recorded.documents if source not in contents]:
        gone = recorded.documents[source]
        upstream.detach(recorded.vector_store_id, gone.upstream_file_id)
        upstream.delete_file(gone.upstream_file_id)
        recorded = _recorded(recorded, source, None)
        records.put(recorded)
        report.deleted.append(source)
    return report


def sync_all(
    configs: Iterable[AssistantConfig],
    *,
    environment: str,
    default_engine: str,
    fallback_engine: str,
    upstream_for: Callable[[str], VectorStoreUpstream],
    records: KnowledgeRecords,
    read: DocumentReader,
) -> list[SyncReport]:
    """Every assistant's documents on every retrieval engine its runs may use (``upstream_for(engine)``).
    Assistants whose knowledge was removed lose their store; a definition deleted from the repository
    keeps it (its name is not known here): ``threadrunner knowledge sync`` says which."""
    reports = []
    for config in configs:
        for engine in engines_to_sync(config, default_engine=default_engine, fallback_engine=fallback_engine):
            if not config.knowledge and records.get(environment, engine, config.name) is None:
                continue
            report = sync_assistant(
                config,
                environment=environment,
                engine=engine,
                upstream=upstream_for(engine),
                records=records,
                read=read,
            )
            logger.info("knowledge synced: %s", report.summary())
            reports.append(report)
    return reports


def _recorded(
    record: KnowledgeStoreRecord, source: str, document: SyncedDocument | None
) -> KnowledgeStoreRecord:
    documents = dict(record.documents)
    if document is None:
        documents.pop(source, None)
    else:
        documents[source] = document
    return record.model_copy(update={"documents": documents, "synced_at": clock.now()})


def _remove(
    recorded: KnowledgeStoreRecord,
    upstream: VectorStoreUpstream,
    records: KnowledgeRecords,
    report: SyncReport,
) -> None:
    upstream.delete_store(recorded.vector_store_id)
    for source, document in recorded.documents.items():
        upstream.delete_file(document.upstream_file_id)
        report.deleted.append(source)
    records.delete(recorded.environment, recorded.engine, recorded.assistant)
    report.store_deleted = True


def _read(source: str, read: DocumentReader) -> bytes:
    try:
        data = read(source)
    except KnowledgeError:
        raise
    except (OSError, ValueError) as error:
        raise KnowledgeError(f"{source}: cannot be read: {error}") from error
    if (problem := size_problem(len(data))) is not None:
        raise KnowledgeError(f"{source}: {problem}")
    return data


def document_reader(root: Path, s3: Callable[[], Any] | None = None) -> DocumentReader:
    """Repository paths under ``root``; ``s3://bucket/key`` through ``s3()`` (a boto3 S3 client), its size
    checked before it is read."""

    def read(source: str) -> bytes:
        if not is_s3(source):
            return (root / source).read_bytes()
        if s3 is None:
            raise KnowledgeError(f"{source}: S3 documents need AWS credentials (none here)")
        bucket, key = split_s3(source)
        client = s3()
        try:
            size = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except Exception as error:  # botocore's ClientError: missing, or not ours to read
            raise KnowledgeError(f"{source}: cannot be read from S3: {error}") from error
        if size > MAX_DOCUMENT_BYTES:
            raise KnowledgeError(f"{source}: {size_problem(size)}")
        return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())

    return read
