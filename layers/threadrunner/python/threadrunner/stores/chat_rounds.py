"""The ``chat`` engine's completions, one item per round of a run (runs table: ``run_id``, ``sk = chat#<nnnn>``).

A chat completion is answered in the call that asks for it and the upstream keeps nothing, so the engine keeps
what came back here: Check run reports it, and the next round replays the run's assistant and tool messages
from it. The items go with the run (RunStore.delete removes its whole partition).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from threadrunner.engines.base import ToolOutput, UpstreamToolCall
from threadrunner.models.records import Record, Usage
from threadrunner.stores._dynamo import from_item, to_item
from threadrunner.stores.blobs import BlobStore
from threadrunner.stores.conditions import Key
from threadrunner.stores.messages import MessageStore

PREFIX = "chat#"


class ChatRound(Record):
    run_id: str
    round: int
    completion_id: str
    # completed (an answer or tool calls), incomplete (cut short), in_progress (the run's deadline came first)
    status: str
    finish_reason: str | None = None
    content: str | None = None
    tool_calls: list[UpstreamToolCall] = Field(default_factory=list)
    # What this round was given: the outputs answering the previous round's calls.
    tool_outputs: list[ToolOutput] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)


def _sort_key(round_number: int) -> str:
    return f"{PREFIX}{round_number:04d}"


class ChatRoundStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def put(self, chat_round: ChatRound) -> None:
        self._table.put_item(Item=to_item(chat_round, sk=_sort_key(chat_round.round), kind="chat_round"))

    def get(self, run_id: str, round_number: int) -> ChatRound | None:
        item = self._table.get_item(
            Key={"run_id": run_id, "sk": _sort_key(round_number)}, ConsistentRead=True
        ).get("Item")
        return None if item is None else from_item(ChatRound, item)

    def list(self, run_id: str) -> list[ChatRound]:
        """Every round of the run, first first."""
        response = self._table.query(
            KeyConditionExpression=Key("run_id").eq(run_id) & Key("sk").begins_with(PREFIX),
            ConsistentRead=True,
        )
        return [from_item(ChatRound, item) for item in response["Items"]]


@dataclass(frozen=True)
class ChatState:
    """What the chat engine reads and keeps: the thread's log, the run's completions, the context budget
    per model (tokens), and where the run's files are (S3 uploads, inlined up to ``inline_bytes``)."""

    messages: MessageStore
    rounds: ChatRoundStore
    context_budget: Callable[[str], int]
    blobs: BlobStore | None = None  # None: runs with files cannot be started
    inline_bytes: int = 256 * 1024
