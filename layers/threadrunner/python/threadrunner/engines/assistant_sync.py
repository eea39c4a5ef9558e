"""Assistants as code, synced upstream: each ``assistants/<name>.yaml`` becomes one upstream assistant per
environment, created at first use and updated when its content hash changes, never once per run.

The registry decides; the engine talks upstream (``AssistantUpstream``); the store remembers (DynamoDB).
Concurrent first uses end with one upstream assistant: the loser of the conditional write deletes its own.
"""

from __future__ import annotations

from typing import Protocol

from threadrunner import clock
from threadrunner.engines.base import AssistantDefinition
from threadrunner.errors import UpstreamError
from threadrunner.stores.upstream_assistants import UpstreamAssistant

MAX_ATTEMPTS = 3


class AssistantRecords(Protocol):
    """Where the synced ids live (stores.upstream_assistants.UpstreamAssistantStore); writes are
    conditional."""

    def get(self, environment: str, name: str) -> UpstreamAssistant | None: ...

    def record(self, assistant: UpstreamAssistant, *, replacing: UpstreamAssistant | None) -> bool: ...

    def forget(self, assistant: UpstreamAssistant) -> bool: ...


class AssistantUpstream(Protocol):
    def create_assistant(self, definition: AssistantDefinition) -> str:
        """Create it upstream; returns its id."""
        ...

    def update_assistant(self, upstream_id: str, definition: AssistantDefinition) -> bool:
        """Make the upstream assistant match; False when the upstream no longer has it."""
        ...

    def delete_assistant(self, upstream_id: str) -> None:
        """Delete it; one that is already gone is not an error."""
        ...


class AssistantRegistry:
    """Built once per Lambda container; remembers what it synced, so a warm container asks nobody."""

    def __init__(self, store: AssistantRecords, environment: str) -> None:
        self._store = store
        self._environment = environment
        self._synced: dict[str, tuple[str, str]] = {}  # name -> (content hash, upstream id)

    def upstream_id(self, definition: AssistantDefinition, upstream: AssistantUpstream) -> str:
        """The id of the upstream assistant that matches ``definition``, synced first if it does not."""
        content_hash = definition.content_hash
        synced = self._synced.get(definition.name)
        if synced is not None and synced[0] == content_hash:
            return synced[1]
        upstream_id = self._sync(definition, content_hash, upstream)
        self._synced[definition.name] = (content_hash, upstream_id)
        return upstream_id

    def forget(self, definition: AssistantDefinition, upstream_id: str) -> None:
        """The upstream no longer has ``upstream_id`` (deleted by hand, a new server): the next use
        creates a new one."""
        self._synced.pop(definition.name, None)
        recorded = self._store.get(self._environment, definition.name)
        if recorded is not None and recorded.upstream_id == upstream_id:
            self._store.forget(recorded)

    def _sync(self, definition: AssistantDefinition, content_hash: str, upstream: AssistantUpstream) -> str:
        for _ in range(MAX_ATTEMPTS):
            recorded = self._store.get(self._environment, definition.name)
            if recorded is not None and recorded.content_hash == content_hash:
                return recorded.upstream_id
            if recorded is not None and upstream.update_assistant(recorded.upstream_id, definition):
                if self._store.record(self._record(recorded.upstream_id, definition), replacing=recorded):
                    return recorded.upstream_id
                continue  # another writer recorded first: look again
            # Nothing recorded, or the upstream lost it: create one, and keep it only if our record wins.
            created = upstream.create_assistant(definition)
            if self._store.record(self._record(created, definition), replacing=recorded):
                return created
            upstream.delete_assistant(created)
        raise UpstreamError(f"assistant {definition.name} could not be synced: its record keeps changing")

    def _record(self, upstream_id: str, definition: AssistantDefinition) -> UpstreamAssistant:
        return UpstreamAssistant(
            name=definition.name,
            environment=self._environment,
            upstream_id=upstream_id,
            content_hash=definition.content_hash,
            synced_at=clock.now(),
        )
