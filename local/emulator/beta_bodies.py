"""Request bodies of the Assistants v2 endpoints (``/v1/assistants``, ``/v1/threads``...), as pydantic models.

Like ``bodies``: only what clients send is modelled, unknown optional knobs are accepted and ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AssistantFunction(_Body):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class AssistantTool(_Body):
    """A tool of an assistant or a run: a function, or a hosted tool the emulator only echoes."""

    type: Literal["function", "code_interpreter", "file_search"]
    function: AssistantFunction | None = None

    @model_validator(mode="after")
    def _function_needs_a_definition(self) -> AssistantTool:
        if self.type == "function" and self.function is None:
            raise ValueError("a function tool needs 'function'")
        return self

    def resource(self) -> dict[str, Any]:
        if self.function is None:
            return {"type": self.type}
        return {"type": "function", "function": self.function.model_dump(exclude_none=True)}


class FileSearchResources(_Body):
    vector_store_ids: list[str] = Field(
        default_factory=list, max_length=1
    )  # one store per assistant or thread


class ToolResources(_Body):
    """``tool_resources``: the vector store file_search searches (the code interpreter's files are not kept)."""

    file_search: FileSearchResources | None = None

    def resource(self) -> dict[str, Any]:
        return {} if self.file_search is None else {"file_search": self.file_search.model_dump()}

    @property
    def vector_store_ids(self) -> list[str]:
        return [] if self.file_search is None else list(self.file_search.vector_store_ids)


class CreateAssistantBody(_Body):
    model: str
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: list[AssistantTool] = Field(default_factory=list, max_length=128)
    tool_resources: ToolResources | None = None
    metadata: dict[str, str] | None = None
    temperature: float | None = None
    top_p: float | None = None


class ModifyAssistantBody(_Body):
    model: str | None = None
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: list[AssistantTool] | None = Field(default=None, max_length=128)
    tool_resources: ToolResources | None = None
    metadata: dict[str, str] | None = None
    temperature: float | None = None
    top_p: float | None = None


class AttachmentTool(_Body):
    type: Literal["code_interpreter", "file_search"]


class Attachment(_Body):
    file_id: str
    tools: list[AttachmentTool]


class CreateMessageBody(_Body):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]] = Field(min_length=1)
    attachments: list[Attachment] | None = None
    metadata: dict[str, str] | None = None


class CreateThreadBody(_Body):
    messages: list[CreateMessageBody] | None = None
    tool_resources: ToolResources | None = None
    metadata: dict[str, str] | None = None


class ModifyThreadBody(_Body):
    tool_resources: ToolResources | None = None
    metadata: dict[str, str] | None = None


class CreateRunBody(_Body):
    assistant_id: str
    model: str | None = None
    instructions: str | None = None
    additional_instructions: str | None = None
    additional_messages: list[CreateMessageBody] | None = None
    tools: list[AssistantTool] | None = Field(default=None, max_length=20)
    metadata: dict[str, str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_prompt_tokens: int | None = None
    max_completion_tokens: int | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    stream: bool | None = None


class ToolOutputBody(_Body):
    tool_call_id: str
    output: str


class SubmitToolOutputsBody(_Body):
    tool_outputs: list[ToolOutputBody]
    stream: bool | None = None
