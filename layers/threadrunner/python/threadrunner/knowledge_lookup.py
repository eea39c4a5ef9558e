"""At run time: which vector stores a run's file_search searches, and what a run went without.

The stores: the assistant's knowledge (synced for the environment and engine, stores/knowledge.py) and the
thread's own documents (``ThreadRecord.vector_store_id``, made when the first one was staged). Looked up
when the engine creates a response (two or three DynamoDB reads), so a document synced or uploaded a moment
ago is searched by the next response.
"""

from __future__ import annotations

import logging
from pathlib import Path

from threadrunner.assistant_catalog import assistant_for
from threadrunner.assistant_knowledge import RETRIEVAL_ENGINES
from threadrunner.engines.base import RunRequest
from threadrunner.hosted_tools import ENGINES_WITH_HOSTED_TOOLS
from threadrunner.models.records import RunRecord
from threadrunner.stores.knowledge import KnowledgeStore
from threadrunner.stores.runs import RunStore
from threadrunner.stores.threads import ThreadStore

logger = logging.getLogger(__name__)

FILE_SEARCH = "file_search"


class VectorStoreLookup:
    def __init__(
        self,
        knowledge: KnowledgeStore,
        runs: RunStore,
        threads: ThreadStore,
        *,
        environment: str,
        engine: str,
    ) -> None:
        self._knowledge = knowledge
        self._runs = runs
        self._threads = threads
        self._environment = environment
        self._engine = engine

    def __call__(self, request: RunRequest) -> list[str]:
        """Every store the request's file_search searches: the assistant's, then the thread's."""
        stores = [self.assistant_store(request.assistant.name) if request.assistant is not None else None]
        stores.append(self.thread_store(request.run_id) if request.run_id else None)
        return [store for store in stores if store is not None]

    def assistant_store(self, assistant: str) -> str | None:
        """The store of the assistant's knowledge documents, synced for this environment and engine."""
        synced = self._knowledge.get(self._environment, self._engine, assistant)
        return synced.vector_store_id if synced is not None else None

    def thread_store(self, run_id: str) -> str | None:
        """The store of the run's thread's own documents, if it has any."""
        run = self._runs.find(run_id)
        thread = self._threads.find(run.user_id, run.thread_id) if run is not None else None
        return thread.vector_store_id if thread is not None else None


def default_lookup(engine: str) -> VectorStoreLookup:
    """The lookup of a deployed function (or the local stack's): its tables, its environment."""
    from threadrunner import aws
    from threadrunner.settings import run_settings, storage_settings

    storage = storage_settings()
    runs_table = aws.table(storage.runs_table)
    return VectorStoreLookup(
        KnowledgeStore(runs_table),
        RunStore(runs_table),
        ThreadStore(aws.table(storage.threads_table)),
        environment=run_settings().environment,
        engine=engine,
    )


def degraded_features(
    run: RunRecord, *, assistants_dir: Path, environment: str, knowledge: KnowledgeStore | None = None
) -> list[str]:
    """What the run's answer goes without, on its engine (a fallback): ``file_search`` when the assistant has
    knowledge documents but the engine has no retrieval store (chat) or none synced for it (the sync never ran);
    ``web_search`` and ``mcp`` when it lists them and the engine has no hosted tools. ``knowledge``: the
    records (default: the function's runs table), read only for an assistant with documents."""
    try:
        assistant = assistant_for(run.assistant, run.user_id, assistants_dir)
    except Exception:  # an assistant removed since the run began: nothing to say about its tools
        return []
    missing = []
    if assistant.knowledge:
        synced = False
        if run.engine in RETRIEVAL_ENGINES:
            records = knowledge or _default_records()
            synced = records.get(environment, run.engine, run.assistant) is not None
        if not synced:
            missing.append(FILE_SEARCH)
    if run.engine not in ENGINES_WITH_HOSTED_TOOLS:
        missing += [
            name for name, listed in (("web_search", assistant.web_search), ("mcp", assistant.mcp)) if listed
        ]
    if missing:
        logger.warning(
            "run %s goes without %s (engine %s, fallback from %s)",
            run.id,
            ", ".join(missing),
            run.engine,
            run.fallback_from,
        )
    return missing


def _default_records() -> KnowledgeStore:
    from threadrunner import aws
    from threadrunner.settings import storage_settings

    return KnowledgeStore(aws.table(storage_settings().runs_table))
