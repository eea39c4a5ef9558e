"""Request bodies the emulator accepts, as pydantic models, and their errors in OpenAI's words.

Only what the engines send is modelled; unknown fields are accepted and ignored, like the real service
does for optional knobs the emulator has no use for.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from local.emulator.errors import ApiError, invalid_request

Model = TypeVar("Model", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FunctionTool(_Body):
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class AutoContainer(_Body):
    type: Literal["auto"]
    file_ids: list[str] = Field(default_factory=list, max_length=50)


class CodeInterpreterTool(_Body):
    type: Literal["code_interpreter"]
    container: str | AutoContainer  # an existing container's id, or one created for the response


class FileSearchTool(_Body):
    type: Literal["file_search"]
    vector_store_ids: list[str] = Field(min_length=1)
    max_num_results: int | None = Field(default=None, ge=1, le=50)


WebSearchType = Literal[
    "web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"
]
WEB_SEARCH_TYPES: tuple[str, ...] = get_args(WebSearchType)


class WebSearchTool(_Body):
    """``web_search`` (and its dated name) or the older ``web_search_preview``: both answer the same."""

    type: WebSearchType


class McpToolFilter(_Body):
    tool_names: list[str] | None = None


class McpApprovalFilter(_Body):
    always: McpToolFilter | None = None
    never: McpToolFilter | None = None


class McpTool(_Body):
    """A remote MCP server; ``headers`` and ``authorization`` are credentials: sent, never echoed."""

    type: Literal["mcp"]
    server_label: str = Field(min_length=1)
    server_url: str
    server_description: str | None = None
    allowed_tools: list[str] | McpToolFilter | None = None
    require_approval: Literal["always", "never"] | McpApprovalFilter | None = None
    headers: dict[str, str] | None = None
    authorization: str | None = None


HostedTool = FileSearchTool | WebSearchTool | McpTool


class CreateResponseBody(_Body):
    model: str
    input: list[dict[str, Any]] = Field(default_factory=list)
    instructions: str | None = None
    tools: list[FunctionTool | CodeInterpreterTool | HostedTool] = Field(default_factory=list)
    include: list[str] = Field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    conversation: str | None = None
    previous_response_id: str | None = None
    background: bool = False
    stream: bool = False  # answered as server-sent events (local/emulator/streams.py)
    store: bool = True
    metadata: dict[str, str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    parallel_tool_calls: bool | None = None

    @field_validator("tools", mode="before")
    @classmethod
    def _each_tool_by_type(cls, tools: Any) -> Any:
        """Each tool against its own type's model, so an error names ``tools[i].field``."""
        if not isinstance(tools, list):
            return tools
        models: dict[Any, type[_Body]] = {
            "code_interpreter": CodeInterpreterTool,
            "file_search": FileSearchTool,
            "mcp": McpTool,
            **dict.fromkeys(WEB_SEARCH_TYPES, WebSearchTool),
        }
        return [
            parse(
                models.get(tool.get("type") if isinstance(tool, dict) else None, FunctionTool),
                tool,
                where=f"tools[{index}]",
            )
            for index, tool in enumerate(tools)
        ]

    @property
    def function_tools(self) -> list[FunctionTool]:
        return [tool for tool in self.tools if isinstance(tool, FunctionTool)]

    @property
    def code_interpreter(self) -> CodeInterpreterTool | None:
        return next((tool for tool in self.tools if isinstance(tool, CodeInterpreterTool)), None)

    @property
    def hosted_tools(self) -> list[HostedTool]:
        """The tools the service runs itself (local/emulator/hosted_tools.py)."""
        return [tool for tool in self.tools if isinstance(tool, FileSearchTool | WebSearchTool | McpTool)]

    @model_validator(mode="before")
    @classmethod
    def _plain_forms(cls, data: Any) -> Any:
        """``input`` may be a string (one user message); ``conversation`` may be ``{"id": ...}``."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("input"), str):
            data["input"] = [{"type": "message", "role": "user", "content": data["input"]}]
        conversation = data.get("conversation")
        if isinstance(conversation, dict) and "id" in conversation:
            data["conversation"] = conversation["id"]
        return data


class CreateConversationBody(_Body):
    items: list[dict[str, Any]] | None = Field(default=None, max_length=20)
    metadata: dict[str, str] | None = None


class CreateItemsBody(_Body):
    items: list[dict[str, Any]] = Field(max_length=20)


# Input items, validated one by one so an error names its place, e.g. ``input[1].call_id``.
class MessageItem(_Body):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[dict[str, Any]]


class FunctionCallItem(_Body):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None


class FunctionCallOutputItem(_Body):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1, max_length=64)
    output: str | list[dict[str, Any]]


class McpApprovalResponseItem(_Body):
    type: Literal["mcp_approval_response"]
    approval_request_id: str = Field(min_length=1)
    approve: bool
    reason: str | None = None
    id: str | None = None


InputItem = MessageItem | FunctionCallItem | FunctionCallOutputItem | McpApprovalResponseItem
_ITEM_MODELS: dict[str, type[InputItem]] = {
    "message": MessageItem,
    "function_call": FunctionCallItem,
    "function_call_output": FunctionCallOutputItem,
    "mcp_approval_response": McpApprovalResponseItem,
}


def parse(model: type[Model], data: Any, *, where: str = "") -> Model:
    """Validate ``data`` or raise the 400 the real service would send, with ``param`` naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _as_api_error(error, where) from error


def parse_item(raw: Any, where: str) -> InputItem:
    """One input item (``where`` is its place, e.g. ``input[2]``); item kinds the emulator lacks are a 400."""
    kind = raw.get("type", "message") if isinstance(raw, dict) else None
    model = _ITEM_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise invalid_request(
            f"Invalid value for '{where}.type': the emulator supports {sorted(_ITEM_MODELS)} items.",
            param=f"{where}.type",
            code="invalid_value",
        )
    return parse(model, raw, where=where)


def _as_api_error(error: ValidationError, where: str) -> ApiError:
    first = error.errors()[0]
    param = _param(where, first["loc"])
    if first["type"] == "missing":
        return invalid_request(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    code = "invalid_type" if first["type"].endswith("_type") else "invalid_value"
    return invalid_request(f"Invalid value for '{param}': {first['msg']}.", param=param, code=code)


def _param(where: str, loc: tuple[int | str, ...]) -> str:
    """``("tools", 0, "name")`` -> ``tools[0].name``, the way OpenAI names parameters."""
    param = where
    for part in loc:
        if isinstance(part, int):
            param += f"[{part}]"
        else:
            param += f".{part}" if param else part
    return param or "body"
