"""Hosted tools: tools the upstream runs itself, named in an assistant's YAML next to its own ``tools``.

- ``web_search: true``: the Responses built-in ``{"type": "web_search"}``; the answer's ``url_citation``
  annotations become the run's ``citations`` (``{"type": "url", "url", "title"}``).
- ``mcp: [{server_label, server_url, allowed_tools?, require_approval?}]``: remote MCP servers (the Responses
  ``mcp`` tool). Only servers on the environment's allow-list (``mcp_servers`` in cdk.json, the
  ``THREADRUNNER_MCP_SERVERS`` setting) may be named; a server's credentials (HTTP headers) live in the
  Secrets Manager secret its allow-list entry names, and go into the model request only (never into YAML,
  state, logs or events). ``require_approval: always`` puts each call through the approval gate: the
  upstream's ``mcp_approval_request`` makes the run ``requires_action`` / ``approve_tool_calls``, and the
  decision goes back as an ``mcp_approval_response``.

They are kept apart from ``tools`` on purpose: a name there is a registered tool (its own Lambda) or a
client tool, and a hosted tool is neither. Only the ``responses`` engine has them; an assistant that names
one on another engine is refused when the definitions are checked (synth, local start) and by the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The engines whose upstream runs hosted tools (the Responses API). Chat Completions servers and
# Assistants v2 servers have no web_search or mcp tool.
ENGINES_WITH_HOSTED_TOOLS = frozenset({"responses"})
# The ToolCallRecord / ToolCallSummary ``runs_on`` of a call an MCP server ran (the upstream called it).
RUNS_ON_MCP = "mcp"

_LABEL = r"^[a-zA-Z0-9_-]{1,64}$"


def https_url(url: str) -> str:
    """A URL threadrunner sends to (an MCP server, a run webhook's subscriber): https, to a host, without
    credentials (they belong in Secrets Manager) or a fragment."""
    parts = urlsplit(url)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or parts.fragment
        or any(c.isspace() for c in url)
    ):
        raise ValueError("must be an https:// URL with a host, without credentials or a fragment")
    return url


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class McpServer(_Strict):
    """A remote MCP server the model may call (the Responses ``mcp`` tool); it must be on the environment's
    allow-list (cdk.json ``mcp_servers``), with the same label and URL."""

    server_label: str = Field(pattern=_LABEL, description="The server's label: its allow-list entry's.")
    server_url: str = Field(description="The server's https URL: its allow-list entry's.")
    allowed_tools: list[str] | None = Field(
        default=None, min_length=1, description="The server's tools the model may call; default: all."
    )
    require_approval: Literal["always", "never"] = Field(
        default="always",
        description="always: a person approves each call (POST /v1/runs/{id}/approvals) before it runs.",
    )

    @field_validator("server_url")
    @classmethod
    def _https(cls, url: str) -> str:
        return https_url(url)


class AllowedMcpServer(_Strict):
    """An entry of an environment's allow-list: an MCP server its assistants may name, and the Secrets
    Manager secret holding the HTTP headers it needs (``{"Authorization": "Bearer ..."}``), if any."""

    server_label: str = Field(pattern=_LABEL)
    server_url: str
    secret_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9/_+=.@:-]{1,2048}$")

    @field_validator("server_url")
    @classmethod
    def _https(cls, url: str) -> str:
        return https_url(url)


class HostedToolPolicy(_Strict):
    """What an environment offers: its default engine (an assistant without ``engine:`` runs on it) and
    its MCP allow-list. Checked at synth (cdk.json), at the local stack's start and by the API."""

    engine: str
    mcp_servers: tuple[AllowedMcpServer, ...] = ()


# A problem: where (a key path: ("mcp", 0, "server_url")) and what.
HostedToolProblem = tuple[tuple[str | int, ...], str]


def hosted_tool_problems(
    web_search: bool,
    mcp: Sequence[McpServer],
    *,
    engine: str,
    engine_is_the_assistants: bool,
    allowed: Sequence[AllowedMcpServer],
) -> list[HostedToolProblem]:
    """Why an assistant's hosted tools cannot run on ``engine`` in this environment (empty: they can)."""
    problems: list[HostedToolProblem] = []
    where = f"engine: {engine}" if engine_is_the_assistants else f"the environment's engine, {engine}"
    if engine not in ENGINES_WITH_HOSTED_TOOLS:
        have = ", ".join(sorted(ENGINES_WITH_HOSTED_TOOLS))
        if web_search:
            problems.append(
                (
                    ("web_search",),
                    f"web_search runs on the {have} engine only; this assistant runs on {where}",
                )
            )
        if mcp:
            problems.append(
                (("mcp",), f"MCP servers run on the {have} engine only; this assistant runs on {where}")
            )
    by_label = {server.server_label: server for server in allowed}
    listed = ", ".join(sorted(by_label)) or "none"
    seen: set[str] = set()
    for index, server in enumerate(mcp):
        entry = by_label.get(server.server_label)
        if server.server_label in seen:
            problems.append((("mcp", index, "server_label"), f"{server.server_label!r} is listed twice"))
        elif entry is None:
            problems.append(
                (
                    ("mcp", index, "server_label"),
                    f"MCP server {server.server_label!r} is not on this environment's allow-list "
                    f"(cdk.json mcp_servers: {listed})",
                )
            )
        elif entry.server_url.rstrip("/") != server.server_url.rstrip("/"):
            problems.append(
                (
                    ("mcp", index, "server_url"),
                    f"{server.server_url!r} is not the allow-listed URL of MCP server "
                    f"{server.server_label!r} (cdk.json mcp_servers: {entry.server_url})",
                )
            )
        seen.add(server.server_label)
    return problems


def web_search_tool() -> dict[str, Any]:
    """The Responses request's web search tool (openai.types.responses.WebSearchToolParam)."""
    return {"type": "web_search"}


def mcp_tool(server: McpServer, headers: dict[str, str] | None) -> dict[str, Any]:
    """The Responses request's ``mcp`` tool (openai.types.responses.tool_param.Mcp); ``headers`` come from
    the allow-list entry's secret and go nowhere else."""
    tool: dict[str, Any] = {
        "type": "mcp",
        "server_label": server.server_label,
        "server_url": server.server_url,
        "require_approval": server.require_approval,
    }
    if server.allowed_tools is not None:
        tool["allowed_tools"] = list(server.allowed_tools)
    if headers:
        tool["headers"] = headers
    return tool


def mcp_approval_response(approval_request_id: str, approve: bool, reason: str | None) -> dict[str, Any]:
    """The input item answering an ``mcp_approval_request`` (openai.types.responses.response_input_item_param
    McpApprovalResponse)."""
    item: dict[str, Any] = {
        "type": "mcp_approval_response",
        "approval_request_id": approval_request_id,
        "approve": approve,
    }
    if reason:
        item["reason"] = reason
    return item
