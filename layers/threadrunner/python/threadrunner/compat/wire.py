"""Request bodies of the Assistants-compatible API, as the OpenAPI document describes them. Unknown
parameters are refused (400 naming them), as the Assistants API did."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from threadrunner.compat.errors import invalid


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


_BodyT = TypeVar("_BodyT", bound=_Body)


class FunctionDefinition(_Body):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Body):
    type: Literal["function", "code_interpreter", "file_search"]
    function: FunctionDefinition | None = None
    file_search: dict[str, Any] | None = None

    def resource(self) -> dict[str, Any]:
        if self.type == "function" and self.function is not None:
            return {"type": "function", "function": self.function.model_dump(exclude_none=True)}
        return {"type": self.type}


Metadata = dict[str, str]


class CreateAssistant(_Body):
    model: str = Field(min_length=1)
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: list[Tool] = Field(default_factory=list, max_length=128)
    tool_resources: dict[str, Any] | None = None
    metadata: Metadata | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: Literal["auto"] | None = None


class ModifyAssistant(_Body):
    model: str | None = Field(default=None, min_length=1)
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_resources: dict[str, Any] | None = None
    metadata: Metadata | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: Literal["auto"] | None = None


class MessageAttachment(_Body):
    file_id: str
    tools: list[dict[str, Any]] = Field(default_factory=list)


class CreateMessage(_Body):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]
    attachments: list[MessageAttachment] | None = None
    metadata: Metadata | None = None

    def text(self) -> str:
        """The message's text (content parts of type ``text``; others are refused by the caller)."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")


class CreateThread(_Body):
    messages: list[CreateMessage] | None = Field(default=None, max_length=32)
    tool_resources: dict[str, Any] | None = None
    metadata: Metadata | None = None


class ModifyThread(_Body):
    tool_resources: dict[str, Any] | None = None
    metadata: Metadata | None = None


class ModifyMetadata(_Body):
    metadata: Metadata | None = None


class _RunOptions(_Body):
    """What a run takes, whether its thread exists or is made with it."""

    assistant_id: str
    model: str | None = None
    instructions: str | None = None
    tools: list[Tool] | None = Field(default=None, max_length=128)
    metadata: Metadata | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stream: bool | None = None
    max_prompt_tokens: int | None = Field(default=None, ge=256)
    max_completion_tokens: int | None = Field(default=None, ge=16)
    truncation_strategy: dict[str, Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: Literal["auto"] | None = None


class CreateRun(_RunOptions):
    additional_instructions: str | None = None
    additional_messages: list[CreateMessage] | None = Field(default=None, max_length=32)


class CreateThreadAndRun(_RunOptions):
    thread: CreateThread | None = None
    tool_resources: dict[str, Any] | None = None


class ToolOutput(_Body):
    tool_call_id: str
    output: str


class SubmitToolOutputs(_Body):
    tool_outputs: list[ToolOutput] = Field(min_length=1)
    stream: bool | None = None


def parse(model: type[_BodyT], data: Any) -> _BodyT:
    """``data`` as ``model``, or the Assistants API's 400 naming the first parameter at fault."""
    if not isinstance(data, dict):
        raise invalid("The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(part) for part in first.get("loc", ())) or None
        if first.get("type") == "extra_forbidden":
            raise invalid(f"Unrecognized request argument supplied: {param}", param) from None
        if first.get("type") == "missing":
            raise invalid(f"Missing required parameter: '{param}'.", param) from None
        raise invalid(f"Invalid value for '{param}': {first.get('msg')}", param) from None
