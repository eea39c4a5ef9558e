"""Conversations: an id, metadata and an ordered list of items. Deleted ones are gone (404)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from threadrunner.clock import epoch, now

from local.emulator.bodies import CreateConversationBody, CreateItemsBody, parse, parse_item
from local.emulator.errors import invalid_request, not_found
from local.emulator.items import new_id, stored_item, unanswered_calls


@dataclass
class Conversation:
    id: str
    created_at: int
    metadata: dict[str, str]
    items: list[dict[str, Any]] = field(default_factory=list)

    def resource(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "conversation",
            "created_at": self.created_at,
            "metadata": self.metadata,
        }


class ConversationStore:
    """Not thread-safe by itself: the server holds its lock around every request."""

    def __init__(self) -> None:
        self._conversations: dict[str, Conversation] = {}

    def get(self, conversation_id: str, *, param: str | None = None) -> Conversation:
        conversation = self._conversations.get(conversation_id)
        if conversation is None:
            raise not_found(f"Conversation with id '{conversation_id}' not found.", param=param)
        return conversation

    def create(self, data: Any) -> dict[str, Any]:
        body = parse(CreateConversationBody, data)
        conversation = Conversation(new_id("conv"), epoch(now()), body.metadata or {})
        conversation.items = [
            stored_item(parse_item(raw, f"items[{index}]")) for index, raw in enumerate(body.items or [])
        ]
        self._conversations[conversation.id] = conversation
        return conversation.resource()

    def retrieve(self, conversation_id: str) -> dict[str, Any]:
        return self.get(conversation_id).resource()

    def delete(self, conversation_id: str) -> dict[str, Any]:
        self.get(conversation_id)
        del self._conversations[conversation_id]
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    def with_unanswered_calls(self) -> dict[str, list[str]]:
        """Conversation id -> the function calls in it that have no output yet (each refuses new responses)."""
        return {
            conversation.id: calls
            for conversation in self._conversations.values()
            if (calls := unanswered_calls(conversation.items))
        }

    def add_items(self, conversation_id: str, data: Any) -> dict[str, Any]:
        conversation = self.get(conversation_id)
        body = parse(CreateItemsBody, data)
        added = [stored_item(parse_item(raw, f"items[{index}]")) for index, raw in enumerate(body.items)]
        conversation.items.extend(added)
        return _item_list(added, has_more=False)

    def list_items(
        self, conversation_id: str, *, order: str, limit: int, after: str | None
    ) -> dict[str, Any]:
        conversation = self.get(conversation_id)
        if order not in ("asc", "desc"):
            raise invalid_request(
                f"Invalid value for 'order': {order!r}.", param="order", code="invalid_value"
            )
        if not 1 <= limit <= 100:
            raise invalid_request(
                "Invalid value for 'limit': must be 1 to 100.", param="limit", code="invalid_value"
            )
        items = conversation.items if order == "asc" else conversation.items[::-1]
        if after is not None:
            ids = [item["id"] for item in items]
            if after not in ids:
                raise invalid_request(f"No item with id '{after}' in this conversation.", param="after")
            items = items[ids.index(after) + 1 :]
        return _item_list(items[:limit], has_more=len(items) > limit)

    def clear(self) -> None:
        self._conversations.clear()


def _item_list(items: list[dict[str, Any]], *, has_more: bool) -> dict[str, Any]:
    # The spec types first_id/last_id as strings, so an empty page says "" rather than null.
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else "",
        "last_id": items[-1]["id"] if items else "",
        "has_more": has_more,
    }
