"""Hosted tools of the Responses API: ``file_search``, ``web_search`` and remote ``mcp`` servers, run by the
emulator itself in the real output shapes (local/emulator/script.py's docstring tells when).

A turn's output, in order: an ``mcp_list_tools`` item per MCP server not listed earlier in the conversation;
an ``mcp_call`` (or an ``mcp_approval_request``, which ends the output there); a ``file_search_call``; a
``web_search_call``; the assistant message, whose ``output_text`` carries ``file_citation`` annotations
(``index``: the place in the text the citation belongs to, as on the real service) and ``url_citation`` ones
(``start_index``/``end_index``: the cited title in the text).

The MCP servers are fakes: a table from ``server_url`` to the tools they serve (``DEFAULT_MCP_SERVERS``, or
what ``EmulatorServer.add_mcp_server`` adds). Every request that reached one is recorded with the headers the
request's tool carried (``headers``, and ``authorization`` as a bearer token), so a test can check the
credentials were sent; they never appear in any output.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from local.emulator import policy
from local.emulator.bodies import (
    CreateResponseBody,
    FileSearchTool,
    McpApprovalFilter,
    McpTool,
    WebSearchTool,
)
from local.emulator.errors import ApiError, invalid_request
from local.emulator.items import assistant_message, new_id
from local.emulator.script import HostedToolsPlan
from local.emulator.tool_arguments import arguments_for, key_words, name_words
from local.emulator.vector_stores import SearchHit, VectorStores

DEFAULT_MAX_RESULTS = 10  # file_search's default max_num_results
_CITED_FILES = 3  # the answer cites at most this many files
_QUOTED_CHARS = 400


@dataclass(frozen=True)
class WebResult:
    """One fixed web search result: every web search finds the server's list, in order."""

    url: str
    title: str
    snippet: str


DEFAULT_WEB_RESULTS = (
    WebResult(
        "https://platform.openai.com/docs/guides/tools-web-search",
        "Web search - OpenAI API",
        "Allow models to search the web for the latest information before generating a response.",
    ),
    WebResult(
        "https://docs.python.org/3/",
        "Python 3 documentation",
        "The official documentation of the Python programming language.",
    ),
)


@dataclass(frozen=True)
class McpToolSpec:
    """A tool a fake MCP server serves. ``output``: the call's output text, or a function of the arguments
    (None: ``{"tool": name, "arguments": {...}, "result": "ok"}`` as JSON)."""

    name: str
    description: str = ""
    input_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    output: str | Callable[[dict[str, Any]], str] | None = None

    def call(self, arguments: dict[str, Any]) -> str:
        if self.output is None:
            return json.dumps({"tool": self.name, "arguments": arguments, "result": "ok"})
        return self.output if isinstance(self.output, str) else self.output(arguments)


def _order_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "order_id": {
                "type": "string",
                "pattern": "^[A-Z][0-9]{4}$",
                "description": "The order id, e.g. A1001",
            }
        },
        "required": ["order_id"],
    }


DEFAULT_MCP_SERVERS: dict[str, tuple[McpToolSpec, ...]] = {
    "https://mcp.example.com/mcp": (
        McpToolSpec(
            "lookup_order",
            "Look up an order's status by its id.",
            _order_schema(),
            lambda arguments: json.dumps({"order_id": arguments.get("order_id"), "status": "shipped"}),
        ),
        McpToolSpec(
            "cancel_order",
            "Cancel an order by its id.",
            _order_schema(),
            lambda arguments: json.dumps({"order_id": arguments.get("order_id"), "cancelled": True}),
        ),
    )
}


@dataclass(frozen=True)
class McpRequest:
    """A request that reached a fake MCP server: ``tools/list``, or ``tools/call`` of ``tool``."""

    server_url: str
    server_label: str
    method: Literal["tools/list", "tools/call"]
    headers: dict[str, str]
    tool: str | None = None
    arguments: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Chosen:
    tool: McpTool
    spec: McpToolSpec
    arguments: dict[str, Any]


class HostedTools:
    """The fixed web results, the fake MCP servers and their request log. Not thread-safe by itself."""

    def __init__(self, stores: VectorStores) -> None:
        self._stores = stores
        self.web_results: tuple[WebResult, ...] = DEFAULT_WEB_RESULTS
        self.mcp_servers: dict[str, tuple[McpToolSpec, ...]] = dict(DEFAULT_MCP_SERVERS)
        self.mcp_requests: list[McpRequest] = []

    def reset(self) -> None:
        self.web_results = DEFAULT_WEB_RESULTS
        self.mcp_servers = dict(DEFAULT_MCP_SERVERS)
        self.mcp_requests.clear()

    def check(self, request: CreateResponseBody, seen: list[dict[str, Any]], new_items: int) -> None:
        """Refuse, as the real service does, what cannot run: a missing or expired vector store, an MCP
        server that does not answer, an approval response to no approval request or to a server the
        request no longer offers."""
        for index, tool in enumerate(request.tools):
            if isinstance(tool, FileSearchTool):
                for at, store_id in enumerate(tool.vector_store_ids):
                    self._stores.check_usable(store_id, param=f"tools[{index}].vector_store_ids[{at}]")
            if isinstance(tool, McpTool) and tool.server_url not in self.mcp_servers:
                raise ApiError(
                    424,
                    f"Error retrieving tool list from MCP server: '{tool.server_label}'. Http status code: "
                    "404 (Not Found)",
                    type="external_connector_error",
                    param=f"tools[{index}]",
                    code="http_error",
                )
        for answer in _approval_answers(seen[len(seen) - new_items :]):
            asked = _approval_request(seen, answer["approval_request_id"])
            if asked is None:
                raise invalid_request(
                    f"No approval request found with id '{answer['approval_request_id']}'.", param="input"
                )
            if _mcp_tool(request, asked["server_label"]) is None:
                raise invalid_request(
                    f"No mcp tool with server_label '{asked['server_label']}' in this request's tools.",
                    param="tools",
                )

    def output(
        self,
        request: CreateResponseBody,
        seen: list[dict[str, Any]],
        new_items: int,
        plan: HostedToolsPlan,
        *,
        today: date,
    ) -> list[dict[str, Any]]:
        """The turn's output items (see the module docstring)."""
        question = policy.turn_from_items(seen).question or ""
        output: list[dict[str, Any]] = []
        findings: list[str] = []
        for tool in request.hosted_tools:
            if isinstance(tool, McpTool) and not _listed(seen, tool.server_label):
                output.append(self._list_tools(tool))
        answers = _approval_answers(seen[len(seen) - new_items :])
        chosen: _Chosen | None
        if answers:
            for answer in answers:
                asked = _approval_request(seen, answer["approval_request_id"])
                assert asked is not None  # check() made sure
                if answer["approve"]:
                    server = _mcp_tool(request, asked["server_label"])
                    assert server is not None
                    chosen = _Chosen(
                        server, self._spec(server, asked["name"]), json.loads(asked["arguments"])
                    )
                    output.append(self._call(chosen, approval_request_id=asked["id"]))
                    findings.append(f"{asked['name']} returned {_shorten(output[-1]['output'])}")
                else:
                    reason = f" ({answer['reason']})" if answer.get("reason") else ""
                    findings.append(
                        f"The call to {asked['name']} was not approved{reason}, so I did not make it."
                    )
        elif plan.mcp_tool is not None or plan.choose_mcp_tool:
            chosen = self._choose(request, plan, question, today)
            if chosen is None and plan.mcp_tool is not None:
                findings.append(f"The tool {plan.mcp_tool} is not available to me, so I did not call it.")
            elif chosen is not None and _needs_approval(chosen.tool, chosen.spec.name):
                output.append(
                    {
                        "type": "mcp_approval_request",
                        "id": new_id("mcpr"),
                        "server_label": chosen.tool.server_label,
                        "name": chosen.spec.name,
                        "arguments": json.dumps(chosen.arguments),
                    }
                )
                return output  # the model waits for the approval
            elif chosen is not None:
                output.append(self._call(chosen, approval_request_id=None))
                findings.append(f"{chosen.spec.name} returned {_shorten(output[-1]['output'])}")
        hits: list[SearchHit] | None = None
        searching = [tool for tool in request.hosted_tools if isinstance(tool, FileSearchTool)]
        if searching:
            hits = self._file_search(searching, question)
            output.append(
                {
                    "type": "file_search_call",
                    "id": new_id("fs"),
                    "status": "completed",
                    "queries": [question],
                    "results": _results(hits) if "file_search_call.results" in request.include else None,
                }
            )
        web = any(isinstance(tool, WebSearchTool) for tool in request.hosted_tools)
        if web:
            action: dict[str, Any] = {"type": "search", "query": question}
            if "web_search_call.action.sources" in request.include:
                action["sources"] = [{"type": "url", "url": result.url} for result in self.web_results]
            output.append(
                {"type": "web_search_call", "id": new_id("ws"), "status": "completed", "action": action}
            )
        output.append(_answer(plan.text, question, findings, hits, self.web_results if web else ()))
        return output

    def _file_search(self, tools: list[FileSearchTool], question: str) -> list[SearchHit]:
        hits: list[SearchHit] = []
        for tool in tools:
            limit = tool.max_num_results or DEFAULT_MAX_RESULTS
            for store_id in tool.vector_store_ids:
                hits += self._stores.search(store_id, question, limit)
        hits.sort(key=lambda hit: -hit.score)
        return hits[: max(tool.max_num_results or DEFAULT_MAX_RESULTS for tool in tools)]

    def _list_tools(self, tool: McpTool) -> dict[str, Any]:
        self._record(tool, "tools/list")
        return {
            "type": "mcp_list_tools",
            "id": new_id("mcpl"),
            "server_label": tool.server_label,
            "tools": [
                {
                    "name": spec.name,
                    "description": spec.description,
                    "input_schema": dict(spec.input_schema),
                    "annotations": None,
                }
                for spec in self._allowed(tool)
            ],
            "error": None,
        }

    def _call(self, chosen: _Chosen, *, approval_request_id: str | None) -> dict[str, Any]:
        self._record(chosen.tool, "tools/call", tool=chosen.spec.name, arguments=chosen.arguments)
        return {
            "type": "mcp_call",
            "id": new_id("mcp"),
            "server_label": chosen.tool.server_label,
            "name": chosen.spec.name,
            "arguments": json.dumps(chosen.arguments),
            "output": chosen.spec.call(chosen.arguments),
            "error": None,
            "status": "completed",
            "approval_request_id": approval_request_id,
        }

    def _choose(
        self, request: CreateResponseBody, plan: HostedToolsPlan, question: str, today: date
    ) -> _Chosen | None:
        """The MCP tool this turn calls: the scripted one if the request allows it, else (the policy) the
        allowed tool whose name shares the most words with the question, else the one whose description
        does (the first on a tie); none when no tool shares a word."""
        offered = [
            (tool, spec)
            for tool in request.hosted_tools
            if isinstance(tool, McpTool)
            for spec in self._allowed(tool)
        ]
        found = None
        if plan.mcp_tool is not None:
            found = next(((t, s) for t, s in offered if s.name == plan.mcp_tool), None)
        else:
            asked = key_words(question)
            named = [(len(name_words(s.name) & asked), -at) for at, (_, s) in enumerate(offered)]
            described = [(len(key_words(s.description) & asked), -at) for at, (_, s) in enumerate(offered)]
            for scores in (named, described):  # the tool the question names most, else describes most
                best = max(scores, default=(0, 0))
                if best[0]:
                    found = offered[-best[1]]
                    break
        if found is None:
            return None
        tool, spec = found
        arguments = plan.mcp_arguments
        if arguments is None:
            arguments = arguments_for(spec.input_schema, question, today=today)
        return _Chosen(tool, spec, arguments)

    def _allowed(self, tool: McpTool) -> list[McpToolSpec]:
        served = self.mcp_servers.get(tool.server_url, ())
        allowed = tool.allowed_tools
        names = allowed if isinstance(allowed, list) else allowed.tool_names if allowed is not None else None
        return [spec for spec in served if names is None or spec.name in names]

    def _spec(self, tool: McpTool, name: str) -> McpToolSpec:
        return next(spec for spec in self.mcp_servers[tool.server_url] if spec.name == name)

    def _record(self, server: McpTool, method: Literal["tools/list", "tools/call"], **call: Any) -> None:
        headers = dict(server.headers or {})
        if server.authorization:
            headers["Authorization"] = f"Bearer {server.authorization}"
        self.mcp_requests.append(McpRequest(server.server_url, server.server_label, method, headers, **call))


def tool_resource(tool: FileSearchTool | WebSearchTool | McpTool) -> dict[str, Any]:
    """The tool as the Response echoes it: an MCP tool's credentials (``headers``, ``authorization``) left
    out."""
    if isinstance(tool, McpTool):
        return tool.model_dump(exclude={"headers", "authorization"}, exclude_none=True)
    return tool.model_dump(exclude_none=True)


def _answer(
    text: str | None,
    question: str,
    findings: list[str],
    hits: list[SearchHit] | None,
    web: tuple[WebResult, ...],
) -> dict[str, Any]:
    """The assistant message: ``text`` (scripted) or one written from the findings, with its citations."""
    cited_files: list[tuple[str, str]] = []  # (file id, filename), best first, once each
    for hit in hits or []:
        if (hit.chunk.file_id, hit.chunk.filename) not in cited_files and len(cited_files) < _CITED_FILES:
            cited_files.append((hit.chunk.file_id, hit.chunk.filename))
    annotations: list[dict[str, Any]] = []
    if text is None:
        parts = list(findings)
        if hits:
            best = hits[0].chunk
            parts.append(f'According to {best.filename}: "{_shorten(best.text, _QUOTED_CHARS)}"')
            parts += [f"See also {filename}." for _, filename in cited_files[1:]]
        elif hits is not None:
            parts.append("I found nothing about that in the files I can search.")
        if web:
            parts.append("From the web:")
            parts += [f"- {result.title}: {result.snippet}" for result in web]
        if not parts:
            parts.append(f'You asked: "{_shorten(question)}". None of my tools had anything on it.')
        text = "\n".join(parts)
    for file_id, filename in cited_files:
        annotations.append(
            {
                "type": "file_citation",
                "file_id": file_id,
                "filename": filename,
                "index": _cited_at(text, filename),
            }
        )
    for result in web:
        start, end = _span(text, result)
        annotations.append(
            {
                "type": "url_citation",
                "url": result.url,
                "title": result.title,
                "start_index": start,
                "end_index": end,
            }
        )
    message = assistant_message(text)
    message["content"][0]["annotations"] = annotations
    return message


def _cited_at(text: str, filename: str) -> int:
    """Where a file's citation goes: at the end of the sentence that names it (a quote's closing mark
    included), else at the end of the text."""
    at = text.find(filename)
    if at < 0:
        return len(text)
    end = text.find("\n", at)
    return len(text) if end < 0 else end


def _span(text: str, result: WebResult) -> tuple[int, int]:
    for cited in (result.title, result.url):
        at = text.find(cited)
        if at >= 0:
            return at, at + len(cited)
    return 0, len(text)


def _results(hits: list[SearchHit]) -> list[dict[str, Any]]:
    return [
        {
            "file_id": hit.chunk.file_id,
            "filename": hit.chunk.filename,
            "text": hit.chunk.text,
            "score": hit.score,
            "attributes": hit.chunk.attributes,
        }
        for hit in hits
    ]


def _needs_approval(tool: McpTool, name: str) -> bool:
    """``require_approval``: ``always`` (the default), ``never``, or filters naming the tools that need it
    (``always``) or not (``never``); a tool neither names needs it unless only ``always`` was given."""
    rule = tool.require_approval
    if rule is None or rule == "always":
        return True
    if rule == "never":
        return False
    assert isinstance(rule, McpApprovalFilter)
    if rule.always is not None and name in (rule.always.tool_names or []):
        return True
    if rule.never is not None and name in (rule.never.tool_names or []):
        return False
    return rule.always is None


def _mcp_tool(request: CreateResponseBody, server_label: str) -> McpTool | None:
    return next(
        (t for t in request.hosted_tools if isinstance(t, McpTool) and t.server_label == server_label), None
    )


def _listed(seen: list[dict[str, Any]], server_label: str) -> bool:
    return any(
        item.get("type") == "mcp_list_tools" and item.get("server_label") == server_label for item in seen
    )


def _approval_answers(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in items if item.get("type") == "mcp_approval_response"]


def _approval_request(seen: list[dict[str, Any]], request_id: str) -> dict[str, Any] | None:
    return next(
        (i for i in seen if i.get("type") == "mcp_approval_request" and i.get("id") == request_id), None
    )


def _shorten(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
