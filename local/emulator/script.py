"""Scripted model turns: what a test wants the emulator's model to do, decided in advance.

Each ``Plan`` is one model turn: one created response, or one Assistants run creation or tool-output
submission. ``EmulatorServer.script(...)`` queues them and the emulator takes the next one whenever a turn
starts (the demo policy answers once the queue is empty). ``Plan.http_error(...)`` is not a model turn: it
makes the next calls of one kind fail at the HTTP level, whatever turn is queued (``create`` is a call that
starts a turn: creating a response or a run, or submitting tool outputs; ``upload`` is a Files API upload).

Hosted tools (Responses only; local/emulator/hosted_tools.py): on a request whose ``tools`` include
``file_search``, ``web_search`` (or ``web_search_preview``) or ``mcp``, a turn that answers with a message
(``Plan.message``, ``Plan.mcp_call``, or the demo policy) runs them first: MCP servers not listed earlier in
the conversation get an ``mcp_list_tools`` item; ``Plan.mcp_call`` (scripted) or the policy (a tool the
question names) calls one MCP tool, as an ``mcp_call`` item, or as an ``mcp_approval_request`` that ends the
response when the tool needs approval (the next request's ``mcp_approval_response`` input makes the call, or
answers that it was denied); ``file_search`` searches the request's vector stores with the user's last
message (a ``file_search_call`` item) and ``web_search`` returns the server's fixed results (a
``web_search_call`` item). The message then cites what they found: ``file_citation`` and ``url_citation``
annotations. ``Plan.message(text)`` keeps its text (a citation points at the file's name or the page's title
where the text mentions it, else at its end); the policy writes the answer from the findings, quoting the
best chunk.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Literal

HttpCall = Literal["create", "retrieve", "cancel", "upload"]


@dataclass(frozen=True, kw_only=True)
class Plan:
    """One model turn. ``polls`` is how many retrieves of a background response still show it running
    before it reaches its final status (``None``: the server's default). ``expires_in`` (Assistants runs
    only) is how many seconds after this turn starts its run expires (``None``: ten minutes after creation,
    as on the real service)."""

    polls: int | None = None
    expires_in: float | None = None

    @staticmethod
    def tool_calls(calls: list[tuple[str, dict[str, Any]]]) -> ToolCallsPlan:
        """The response completes with one ``function_call`` item per ``(name, arguments)``."""
        return ToolCallsPlan(calls=tuple((name, dict(arguments)) for name, arguments in calls))

    @staticmethod
    def message(text: str) -> MessagePlan:
        """The response completes with an assistant message."""
        return MessagePlan(text=text)

    @staticmethod
    def mcp_call(
        name: str, arguments: dict[str, Any] | None = None, *, text: str | None = None
    ) -> HostedToolsPlan:
        """On a request with ``mcp`` tools: the model calls the MCP tool ``name`` (None ``arguments``: written
        from its input schema and the question), or asks for approval first when the tool's
        ``require_approval`` says so; a tool the request does not allow is not called (the answer says so).
        The answer is ``text``, or written from the tool's output."""
        return HostedToolsPlan(
            text=text, mcp_tool=name, mcp_arguments=None if arguments is None else dict(arguments)
        )

    @staticmethod
    def fail(code: str = "server_error", message: str = "The model failed to respond.") -> FailPlan:
        """The response ends ``failed`` with ``error: {code, message}`` (a ResponseErrorCode of the spec)."""
        return FailPlan(code=code, error_message=message)

    @staticmethod
    def incomplete(
        reason: Literal["max_output_tokens", "content_filter"] = "max_output_tokens", text: str = ""
    ) -> IncompletePlan:
        """The response ends ``incomplete``; with ``text``, it carries that partial message."""
        return IncompletePlan(reason=reason, text=text)

    @staticmethod
    def analyse_csv(text: str = "Here is the chart and a summary of your data.") -> AnalyseCsvPlan:
        """The code interpreter analyses the first CSV the turn was given (Responses: the container's files;
        Assistants: the message's code_interpreter attachments) and writes a PNG bar chart and a summary
        CSV (local.emulator.analysis); the answer cites both."""
        return AnalyseCsvPlan(text=text)

    @staticmethod
    def never_finishes() -> NeverFinishesPlan:
        """The response stays ``in_progress`` until cancelled (and keeps its conversation locked)."""
        return NeverFinishesPlan()

    @staticmethod
    def stays_queued() -> StaysQueuedPlan:
        """The response (or Assistants run) stays ``queued`` until cancelled, as under an upstream backlog
        (and keeps its conversation or thread locked). A chat completion just never answers."""
        return StaysQueuedPlan()

    @staticmethod
    def slow(polls: int, then: Plan) -> Plan:
        """``then``, after ``polls`` retrieves that still show the response queued or in progress."""
        if polls < 0:
            raise ValueError("polls must be >= 0")
        return replace(then, polls=polls)

    @staticmethod
    def expiring(seconds: float, then: Plan) -> Plan:
        """``then``, on an Assistants run that expires ``seconds`` after this turn starts: past that, it
        shows ``expired`` and refuses tool outputs."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        return replace(then, expires_in=seconds)

    @staticmethod
    def http_error(
        status: int = 429,
        code: str | None = "rate_limit_exceeded",
        *,
        on: HttpCall = "create",
        times: int = 1,
        message: str | None = None,
        retry_after_ms: int = 1000,
    ) -> HttpErrorPlan:
        """The next ``times`` calls of kind ``on`` answer ``status`` in OpenAI's error shape.

        429 ``rate_limit_exceeded`` carries ``retry-after`` (whole seconds, at least 1) and ``retry-after-ms``
        (which the SDK prefers: keep it small in tests); ``insufficient_quota`` carries neither, like the
        real service, because waiting does not help.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        return HttpErrorPlan(
            status=status, code=code, on=on, times=times, message=message, retry_after_ms=retry_after_ms
        )

    @staticmethod
    def malformed_json(*, on: HttpCall = "retrieve", times: int = 1) -> HttpErrorPlan:
        """The next ``times`` calls of kind ``on`` answer 200 with a truncated JSON body, as a connection
        cut mid-answer or a broken proxy would."""
        if times < 1:
            raise ValueError("times must be >= 1")
        return HttpErrorPlan(
            status=200, code=None, on=on, times=times, message=None, retry_after_ms=0, malformed=True
        )

    @staticmethod
    def http_hang(seconds: float, *, on: HttpCall = "create", times: int = 1) -> HttpErrorPlan:
        """The next ``times`` calls of kind ``on`` hang for ``seconds`` (a client with a shorter timeout
        gives up), then answer 504 as a gateway in front of a stuck server would."""
        if seconds <= 0 or times < 1:
            raise ValueError("seconds must be > 0 and times >= 1")
        return HttpErrorPlan(
            status=504, code=None, on=on, times=times, message=None, retry_after_ms=0, delay_seconds=seconds
        )


@dataclass(frozen=True, kw_only=True)
class ToolCallsPlan(Plan):
    calls: tuple[tuple[str, dict[str, Any]], ...]


@dataclass(frozen=True, kw_only=True)
class MessagePlan(Plan):
    text: str


@dataclass(frozen=True, kw_only=True)
class HostedToolsPlan(Plan):
    """A turn that runs the request's hosted tools, then answers (see the module docstring). ``text`` None:
    the answer is written from what the tools found. ``choose_mcp_tool``: the policy's turn, which calls the
    MCP tool the question names, if any."""

    text: str | None = None
    mcp_tool: str | None = None
    mcp_arguments: dict[str, Any] | None = None
    choose_mcp_tool: bool = False


@dataclass(frozen=True, kw_only=True)
class FailPlan(Plan):
    code: str
    error_message: str


@dataclass(frozen=True, kw_only=True)
class IncompletePlan(Plan):
    reason: str
    text: str = ""


@dataclass(frozen=True, kw_only=True)
class AnalyseCsvPlan(Plan):
    text: str


@dataclass(frozen=True, kw_only=True)
class NeverFinishesPlan(Plan):
    pass


@dataclass(frozen=True, kw_only=True)
class StaysQueuedPlan(NeverFinishesPlan):
    pass


@dataclass(frozen=True, kw_only=True)
class HttpErrorPlan:
    """An HTTP-level failure of the next ``times`` calls of kind ``on`` (see ``Plan.http_error``)."""

    status: int
    code: str | None
    on: HttpCall
    times: int
    message: str | None
    retry_after_ms: int
    delay_seconds: float = 0.0  # the answer comes this late (a hung upstream, then its proxy gives up)
    malformed: bool = False  # a 200 whose JSON body is cut short


class Script:
    """The queue of planned turns, and the pending HTTP failures per kind of call."""

    def __init__(self) -> None:
        self._turns: deque[Plan] = deque()
        self._failures: dict[HttpCall, deque[_PendingFailure]] = {}

    def add(self, *plans: Plan | HttpErrorPlan) -> None:
        for plan in plans:
            if isinstance(plan, HttpErrorPlan):
                self._failures.setdefault(plan.on, deque()).append(_PendingFailure(plan, plan.times))
            elif isinstance(plan, Plan):
                self._turns.append(plan)
            else:
                raise TypeError(f"not a plan: {plan!r}")

    def next_turn(self) -> Plan | None:
        return self._turns.popleft() if self._turns else None

    def next_failure(self, call: HttpCall) -> HttpErrorPlan | None:
        """The HTTP failure this call must answer, if one is pending (each counts down its ``times``)."""
        pending = self._failures.get(call)
        if not pending:
            return None
        failure = pending[0]
        failure.left -= 1
        if failure.left == 0:
            pending.popleft()
        return failure.plan

    @property
    def pending(self) -> int:
        """Planned turns and HTTP failures not used yet (a test can assert its script was consumed)."""
        return len(self._turns) + sum(failure.left for queue in self._failures.values() for failure in queue)

    def clear(self) -> None:
        self._turns.clear()
        self._failures.clear()


@dataclass
class _PendingFailure:
    plan: HttpErrorPlan
    left: int
