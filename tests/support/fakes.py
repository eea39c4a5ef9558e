"""Fakes over mocks: an in-memory Engine the tests can script and inspect."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from threadrunner.engines.base import RunRequest, ToolOutput, UpstreamRun
from threadrunner.models.records import RunRecord


@dataclass
class FakeEngine:
    """Answers polls from a queue of UpstreamRun values; records every call."""

    name: str = "responses"
    polls: list[UpstreamRun] = field(default_factory=list)
    threads_created: list[str] = field(default_factory=list)
    creates: list[tuple[str, object]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    fail_next_create: Exception | None = None
    # What find_created answers: an id, None (nothing was created) or an exception (the upstream cannot tell).
    found: str | Exception | None = None

    def create_thread(self, metadata: dict[str, str]) -> str:
        thread_id = f"conv_{len(self.threads_created) + 1}"
        self.threads_created.append(thread_id)
        return thread_id

    def delete_thread(self, upstream_thread_id: str) -> None:
        self.threads_created.remove(upstream_thread_id)

    def thread_exists(self, upstream_thread_id: str) -> bool:
        return upstream_thread_id in self.threads_created

    def start(self, request: RunRequest, message: str) -> str:
        return self._create("start", message)

    def submit_tool_outputs(self, request: RunRequest, run: RunRecord, outputs: list[ToolOutput]) -> str:
        return self._create("submit", outputs)

    def poll(self, run: RunRecord) -> UpstreamRun:
        return self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]

    def find_created(
        self, request: RunRequest, run: RunRecord, round_number: int, call_ids: Sequence[str]
    ) -> str | None:
        if isinstance(self.found, Exception):
            raise self.found
        return self.found

    def close_tool_calls(self, run: RunRecord, call_ids: Sequence[str]) -> None:
        self.closed.extend(call_ids)

    def cancel(self, run: RunRecord) -> None:
        self.cancelled.append(run.current_response_id or "")

    def _create(self, kind: str, payload: object) -> str:
        if self.fail_next_create is not None:
            error, self.fail_next_create = self.fail_next_create, None
            raise error
        self.creates.append((kind, payload))
        return f"resp_{len(self.creates)}"
