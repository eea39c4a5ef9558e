"""Assistants created through the compatible API: stored per user in the threads table (``user_id`` /
``compat_assistant#<id>``, so deleting a user's data takes them), shown in the Assistants shape, and run as an
assistant definition (threadrunner.assistant_definitions.AssistantConfig): each function tool is a client
tool (the run waits in ``requires_action`` for its outputs, as the Assistants API did)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from threadrunner import clock
from threadrunner.assistant_definitions import AssistantConfig
from threadrunner.assistant_knowledge import RETRIEVAL_ENGINES
from threadrunner.compat.errors import invalid, not_found
from threadrunner.compat.wire import Tool
from threadrunner.models.deferred_model import DeferredModel
from threadrunner.stores._dynamo import every_item, from_item, to_item
from threadrunner.stores.conditions import Key

PREFIX = "asst_"
_SK = "compat_assistant#"
MAX_ASSISTANTS = 500  # per user: a list is read whole
# An assistant without instructions still needs some for the model (AssistantConfig requires them).
DEFAULT_INSTRUCTIONS = "You are a helpful assistant."
# The engines' built-in tools: the code interpreter reads files attached for it (engines/responses.py).
# file_search searches the thread's documents (files attached for it: threadrunner/files/thread_documents.py).
_BUILT_IN = {"code_interpreter": ("responses", "assistants"), "file_search": RETRIEVAL_ENGINES}


class CompatAssistant(DeferredModel):
    id: str
    user_id: str
    created_at: int
    model: str
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    tools: list[Tool] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    temperature: float | None = None
    top_p: float | None = None

    def resource(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "assistant",
            "created_at": self.created_at,
            "name": self.name,
            "description": self.description,
            "model": self.model,
            "instructions": self.instructions,
            "tools": [tool.resource() for tool in self.tools],
            "tool_resources": {},
            "metadata": self.metadata,
            "temperature": 1.0 if self.temperature is None else self.temperature,
            "top_p": 1.0 if self.top_p is None else self.top_p,
            "response_format": "auto",
        }

    def config(self) -> AssistantConfig:
        """The assistant as the workflow runs it."""
        return AssistantConfig.model_validate(
            {
                "name": "compat-" + self.id.removeprefix(PREFIX).lower(),
                "description": self.description or "",
                "instructions": self.instructions or DEFAULT_INSTRUCTIONS,
                "model": self.model,
                "tools": [
                    {
                        "name": tool.function.name,
                        "runs_on": "client",
                        "description": tool.function.description or tool.function.name,
                        "parameters": tool.function.parameters or {"type": "object", "properties": {}},
                    }
                    for tool in self.tools
                    if tool.type == "function" and tool.function is not None
                ],
            }
        )


def check_tools(tools: list[Tool], engine: str, param: str = "tools") -> None:
    """Refuse at create time what this deployment's engine cannot run: a built-in it lacks, file_search (no
    vector stores through this API), a function without a usable schema."""
    for index, tool in enumerate(tools):
        where = f"{param}[{index}]"
        if tool.type == "function":
            if tool.function is None:
                raise invalid("A function tool needs 'function'.", f"{where}.function")
            try:  # the schema a client tool needs (assistant_definitions.check_json_schema_object)
                CompatAssistant(id="asst_x", user_id="-", created_at=0, model="-", tools=[tool]).config()
            except ValueError as error:
                raise invalid(
                    f"Invalid function parameters: {error}", f"{where}.function.parameters"
                ) from None
        elif engine not in _BUILT_IN[tool.type]:
            raise invalid(
                f"{tool.type} is not available on this deployment's engine ({engine}).", f"{where}.type"
            )


class CompatAssistantStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def create(self, assistant: CompatAssistant) -> None:
        if len(self.list(assistant.user_id)) >= MAX_ASSISTANTS:
            raise invalid(f"A user may keep at most {MAX_ASSISTANTS} assistants; delete some first.")
        self._table.put_item(Item=to_item(assistant, sk=_SK + assistant.id))

    def new(self, user_id: str, **fields: Any) -> CompatAssistant:
        assistant = CompatAssistant(
            id=clock.new_id("asst"), user_id=user_id, created_at=clock.epoch(clock.now()), **fields
        )
        self.create(assistant)
        return assistant

    def get(self, user_id: str, assistant_id: str, param: str | None = None) -> CompatAssistant:
        item = self._table.get_item(
            Key={"user_id": user_id, "sk": _SK + assistant_id}, ConsistentRead=True
        ).get("Item")
        if item is None:
            raise not_found("assistant", assistant_id, param)
        return from_item(CompatAssistant, item)

    def save(self, assistant: CompatAssistant) -> None:
        self._table.put_item(Item=to_item(assistant, sk=_SK + assistant.id))

    def list(self, user_id: str) -> list[CompatAssistant]:
        """Oldest first (ids sort by creation)."""
        items = every_item(
            self._table.query,
            KeyConditionExpression=Key("user_id").eq(user_id) & Key("sk").begins_with(_SK),
            ConsistentRead=True,
        )
        return [from_item(CompatAssistant, item) for item in items]

    def delete(self, user_id: str, assistant_id: str) -> None:
        self.get(user_id, assistant_id)
        self._table.delete_item(Key={"user_id": user_id, "sk": _SK + assistant_id})
