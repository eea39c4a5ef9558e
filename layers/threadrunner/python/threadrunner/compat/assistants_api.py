"""``/compat/v1/assistants``: create, retrieve, update, list and delete a user's own assistants."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from threadrunner.compat.assistant_store import CompatAssistant, check_tools
from threadrunner.compat.errors import invalid
from threadrunner.compat.pages import page
from threadrunner.compat.wire import CreateAssistant, ModifyAssistant, parse
from threadrunner.services.context import ApiContext


def create(ctx: ApiContext, user_id: str, data: Any) -> dict[str, Any]:
    body = parse(CreateAssistant, data)
    check_tools(body.tools, ctx.run_settings.engine)
    _no_tool_resources(body.tool_resources)
    assistant = ctx.compat_assistants.new(
        user_id,
        **body.model_dump(exclude={"tools", "tool_resources", "metadata", "response_format"}),
        tools=body.tools,
        metadata=body.metadata or {},
    )
    return assistant.resource()


def retrieve(ctx: ApiContext, user_id: str, assistant_id: str) -> dict[str, Any]:
    return ctx.compat_assistants.get(user_id, assistant_id).resource()


def update(ctx: ApiContext, user_id: str, assistant_id: str, data: Any) -> dict[str, Any]:
    assistants = ctx.compat_assistants
    assistant = assistants.get(user_id, assistant_id)
    body = parse(ModifyAssistant, data)
    if body.tools is not None:
        check_tools(body.tools, ctx.run_settings.engine)
    _no_tool_resources(body.tool_resources)
    changes = {
        name: getattr(body, name)
        for name in body.model_fields_set - {"tool_resources", "response_format"}
        if not (name == "model" and body.model is None)
    }
    if "metadata" in changes and changes["metadata"] is None:
        changes["metadata"] = {}
    if "tools" in changes and changes["tools"] is None:
        changes["tools"] = []
    updated = CompatAssistant.model_validate({**assistant.model_dump(), **changes})
    assistants.save(updated)
    return updated.resource()


def list_page(ctx: ApiContext, user_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    return page(
        ctx.compat_assistants.list(user_id),
        query,
        id_of=lambda assistant: assistant.id,
        resource=CompatAssistant.resource,
    )


def delete(ctx: ApiContext, user_id: str, assistant_id: str) -> dict[str, Any]:
    ctx.compat_assistants.delete(user_id, assistant_id)
    return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}


def _no_tool_resources(resources: dict[str, Any] | None) -> None:
    if resources and any(resources.values()):
        raise invalid(
            "tool_resources are not supported by this API: the code interpreter reads the files attached to a "
            "message, and vector stores are not kept through it.",
            "tool_resources",
        )
