"""Assistants (Assistants API v2): a model, instructions and tools under an id. Deleted ones are gone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from threadrunner.clock import epoch, now
from werkzeug.wrappers import Request

from local.emulator.beta_bodies import AssistantTool, CreateAssistantBody, ModifyAssistantBody, ToolResources
from local.emulator.bodies import parse
from local.emulator.errors import not_found
from local.emulator.items import new_id
from local.emulator.pages import page


@dataclass
class StoredAssistant:
    id: str
    created_at: int
    model: str
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    tools: list[AssistantTool] = field(default_factory=list)
    tool_resources: ToolResources = field(default_factory=ToolResources)
    metadata: dict[str, str] = field(default_factory=dict)
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
            "tool_resources": self.tool_resources.resource(),
            "metadata": self.metadata,
            "temperature": 1.0 if self.temperature is None else self.temperature,
            "top_p": 1.0 if self.top_p is None else self.top_p,
            "response_format": "auto",
        }


class AssistantStore:
    """Not thread-safe by itself: the server holds its lock around every request."""

    def __init__(self) -> None:
        self._assistants: dict[str, StoredAssistant] = {}  # in creation order

    def get(self, assistant_id: str, *, param: str | None = None) -> StoredAssistant:
        assistant = self._assistants.get(assistant_id)
        if assistant is None:
            raise not_found(f"No assistant found with id '{assistant_id}'.", param=param)
        return assistant

    def create(self, data: Any) -> dict[str, Any]:
        body = parse(CreateAssistantBody, data)
        assistant = StoredAssistant(
            id=new_id("asst"),
            created_at=epoch(now()),
            **body.model_dump(exclude={"tools", "tool_resources", "metadata"}),
            tools=body.tools,
            tool_resources=body.tool_resources or ToolResources(),
            metadata=body.metadata or {},
        )
        self._assistants[assistant.id] = assistant
        return assistant.resource()

    def update(self, assistant_id: str, data: Any) -> dict[str, Any]:
        assistant = self.get(assistant_id)
        body = parse(ModifyAssistantBody, data)
        for name in body.model_fields_set:  # only what the request names changes; null clears it
            value = getattr(body, name)
            if value is None and name == "model":
                continue
            if value is None and name in ("tools", "metadata", "tool_resources"):
                value = {"tools": [], "metadata": {}, "tool_resources": ToolResources()}[name]
            setattr(assistant, name, value)
        return assistant.resource()

    def delete(self, assistant_id: str) -> dict[str, Any]:
        self.get(assistant_id)
        del self._assistants[assistant_id]
        return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}

    def list(self, request: Request) -> dict[str, Any]:
        return page(
            list(self._assistants.values()),
            request,
            resource=StoredAssistant.resource,
            id_of=lambda assistant: assistant.id,
        )

    def clear(self) -> None:
        self._assistants.clear()
