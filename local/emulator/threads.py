"""Threads and their messages (Assistants API v2). A thread's messages are kept oldest first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from threadrunner.clock import epoch, now
from werkzeug.wrappers import Request

from local.emulator.beta_bodies import CreateMessageBody, CreateThreadBody, ModifyThreadBody, ToolResources
from local.emulator.bodies import parse
from local.emulator.errors import not_found
from local.emulator.items import new_id
from local.emulator.pages import page
from local.emulator.policy import text_of


@dataclass
class StoredThread:
    id: str
    created_at: int
    metadata: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    tool_resources: ToolResources = field(default_factory=ToolResources)

    def resource(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "thread",
            "created_at": self.created_at,
            "tool_resources": self.tool_resources.resource(),
            "metadata": self.metadata,
        }

    def latest_user_attachments(self) -> list[dict[str, Any]]:
        for message in reversed(self.messages):
            if message["role"] == "user":
                return list(message["attachments"])
        return []

    def latest_user_text(self) -> str | None:
        """What the model answers: the newest user message."""
        for message in reversed(self.messages):
            if message["role"] == "user":
                return text_of(message["content"])
        return None


class ThreadStore:
    """Not thread-safe by itself: the server holds its lock around every request.

    ``file_exists`` says whether an attachment's file was uploaded (a missing one is a 400)."""

    def __init__(self, file_exists: Callable[[str], bool]) -> None:
        self._threads: dict[str, StoredThread] = {}
        self._file_exists = file_exists

    def get(self, thread_id: str) -> StoredThread:
        thread = self._threads.get(thread_id)
        if thread is None:
            raise not_found(f"No thread found with id '{thread_id}'.")
        return thread

    def create(self, data: Any) -> dict[str, Any]:
        body = parse(CreateThreadBody, data)
        thread = StoredThread(
            new_id("thread"),
            epoch(now()),
            body.metadata or {},
            tool_resources=body.tool_resources or ToolResources(),
        )
        for index, message in enumerate(body.messages or []):
            self.add_message(thread, message, where=f"messages[{index}]")
        self._threads[thread.id] = thread
        return thread.resource()

    def update(self, thread_id: str, data: Any) -> dict[str, Any]:
        """Only what the request names changes: its metadata, the vector store file_search searches."""
        thread = self.get(thread_id)
        body = parse(ModifyThreadBody, data)
        if "metadata" in body.model_fields_set:
            thread.metadata = body.metadata or {}
        if "tool_resources" in body.model_fields_set:
            thread.tool_resources = body.tool_resources or ToolResources()
        return thread.resource()

    def delete(self, thread_id: str) -> dict[str, Any]:
        self.get(thread_id)
        del self._threads[thread_id]
        return {"id": thread_id, "object": "thread.deleted", "deleted": True}

    def create_message(self, thread_id: str, data: Any) -> dict[str, Any]:
        return self.add_message(self.get(thread_id), parse(CreateMessageBody, data))

    def add_message(
        self, thread: StoredThread, body: CreateMessageBody, *, where: str = ""
    ) -> dict[str, Any]:
        attachments = [attachment.model_dump() for attachment in body.attachments or []]
        for index, attachment in enumerate(attachments):
            if not self._file_exists(attachment["file_id"]):
                param = f"{where}.attachments[{index}].file_id".lstrip(".")
                raise not_found(f"No file found with id '{attachment['file_id']}'.", param=param)
        content = body.content
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        message = _message(thread.id, body.role, [_content_part(part) for part in parts])
        message["attachments"] = attachments
        message["metadata"] = body.metadata or {}
        thread.messages.append(message)
        return message

    def add_answer(
        self,
        thread: StoredThread,
        text: str,
        *,
        run_id: str,
        assistant_id: str,
        incomplete_reason: str | None,
        parts: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The message a run writes: the model's answer (or what it got to say before it stopped);
        ``parts`` replaces the plain text with content parts as the message holds them."""
        content = parts or [_content_part({"type": "text", "text": text})]
        message = _message(thread.id, "assistant", content)
        message.update(run_id=run_id, assistant_id=assistant_id)
        if incomplete_reason is not None:
            message.update(
                status="incomplete",
                incomplete_details={"reason": incomplete_reason},
                completed_at=None,
                incomplete_at=message["created_at"],
            )
        thread.messages.append(message)
        return message

    def list_messages(self, thread_id: str, request: Request) -> dict[str, Any]:
        messages = self.get(thread_id).messages
        if (run_id := request.args.get("run_id")) is not None:
            messages = [message for message in messages if message["run_id"] == run_id]
        return page(messages, request, resource=dict, id_of=lambda message: str(message["id"]))

    def clear(self) -> None:
        self._threads.clear()


def _message(thread_id: str, role: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    created = epoch(now())
    return {
        "id": new_id("msg"),
        "object": "thread.message",
        "created_at": created,
        "thread_id": thread_id,
        "status": "completed",
        "incomplete_details": None,
        "completed_at": created,
        "incomplete_at": None,
        "role": role,
        "content": content,
        "assistant_id": None,
        "run_id": None,
        "attachments": [],
        "metadata": {},
    }


def _content_part(part: dict[str, Any]) -> dict[str, Any]:
    """A request content part as a message holds it: text gets its annotations; images stay as sent."""
    if part.get("type") == "text":
        return {"type": "text", "text": {"value": str(part.get("text", "")), "annotations": []}}
    return part
