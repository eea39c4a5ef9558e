"""Runs and run steps (Assistants API v2): a run plays model turns (scripted or the demo policy) on a thread.

A run is ``queued`` when created, ``in_progress`` for its turn's number of retrieves, then reveals the turn:
``requires_action`` (tool calls; submitting their outputs starts the next turn), ``completed`` (an assistant
message on the thread), ``failed`` or ``incomplete``. Cancelling shows ``cancelling`` until the next
retrieve, then ``cancelled``; a cancel has landed by the time the thread takes a new run (on the real service
it takes moments, not a poll). A run that is not final by its ``expires_at`` is ``expired``, and refuses tool
outputs from then on. While a run is not final its thread is locked: no new messages, no other run.

The stored run and step, their wire objects and the step and usage bookkeeping are local/emulator/stored_runs.py.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from threadrunner.clock import epoch, now
from werkzeug.wrappers import Request

from local.emulator import policy
from local.emulator.analysis import CHART_NAME, SUMMARY_NAME, analyse_csv
from local.emulator.assistants import AssistantStore
from local.emulator.beta_bodies import CreateRunBody, SubmitToolOutputsBody
from local.emulator.bodies import parse
from local.emulator.errors import invalid_request, not_found
from local.emulator.files import FileStore, StoredFile
from local.emulator.items import new_id
from local.emulator.pages import page
from local.emulator.script import (
    AnalyseCsvPlan,
    FailPlan,
    IncompletePlan,
    MessagePlan,
    NeverFinishesPlan,
    Plan,
    Script,
    StaysQueuedPlan,
    ToolCallsPlan,
)
from local.emulator.stored_runs import (
    StoredRun,
    add_usage,
    end_step,
    new_step,
    run_resource,
    step_resource,
    turn_usage,
)
from local.emulator.threads import ThreadStore
from local.emulator.vector_stores import SearchHit, VectorStores

_SEARCH_RESULTS = 5  # file_search's chunks per answer
EXPIRES_AFTER_SECONDS = 600  # the real service expires a run ten minutes after creation
_ERROR_CODES = ("server_error", "rate_limit_exceeded", "invalid_prompt")  # what ``last_error.code`` may say
# An incomplete turn's reason, for the run (``incomplete_details``) and for its message.
_INCOMPLETE = {
    "max_output_tokens": ("max_completion_tokens", "max_tokens"),
    "content_filter": (None, "content_filter"),
}


class RunStore:
    """Not thread-safe by itself: the server holds its lock around every request."""

    def __init__(
        self,
        threads: ThreadStore,
        assistants: AssistantStore,
        script: Script,
        *,
        polls: int,
        today: Callable[[], date],
        clock: Callable[[], float] = time.time,
        files: FileStore | None = None,
        stores: VectorStores | None = None,
    ) -> None:
        self._files = files or FileStore()
        self._stores = stores or VectorStores(self._files)
        self._threads = threads
        self._assistants = assistants
        self._script = script
        self._polls = polls
        self._today = today
        self._clock = clock
        self._runs: dict[str, StoredRun] = {}  # in creation order

    def ensure_idle(self, thread_id: str) -> None:
        """A thread with an unfinished run takes no new messages."""
        if (active := self._active_run(thread_id)) is not None:
            raise invalid_request(f"Can't add messages to {thread_id} while a run {active.id} is active.")

    def create(self, thread_id: str, data: Any) -> dict[str, Any]:
        thread = self._threads.get(thread_id)
        body = parse(CreateRunBody, data)
        if body.stream:
            raise invalid_request("The emulator does not stream runs: leave 'stream' unset.", param="stream")
        assistant = self._assistants.get(body.assistant_id, param="assistant_id")
        if (active := self._active_run(thread_id)) is not None:
            raise invalid_request(f"Thread {thread_id} already has an active run {active.id}.")
        for index, message in enumerate(body.additional_messages or []):
            self._threads.add_message(thread, message, where=f"additional_messages[{index}]")
        instructions = (assistant.instructions or "") if body.instructions is None else body.instructions
        if body.additional_instructions:
            instructions = f"{instructions}\n{body.additional_instructions}".strip()
        tools = assistant.tools if body.tools is None else body.tools
        for store_id in [*assistant.tool_resources.vector_store_ids, *thread.tool_resources.vector_store_ids]:
            self._stores.check_usable(store_id, param="tool_resources.file_search.vector_store_ids")
        created = self._clock()
        run = StoredRun(
            id=new_id("run"),
            thread=thread,
            assistant_id=assistant.id,
            created_at=int(created),
            body=body,
            model=body.model or assistant.model,
            instructions=instructions,
            tools=[tool.resource() for tool in tools],
            plan=Plan.message(""),  # replaced by the first turn, just below
            polls_left=0,
            expires_at=created + EXPIRES_AFTER_SECONDS,
        )
        self._start_turn(run)
        self._runs[run.id] = run
        return run_resource(run)

    def retrieve(self, thread_id: str, run_id: str) -> dict[str, Any]:
        run = self._get(thread_id, run_id)
        self._advance(run)
        return run_resource(run)

    def cancel(self, thread_id: str, run_id: str) -> dict[str, Any]:
        run = self._get(thread_id, run_id)
        self._expire_if_due(run)
        if run.status not in ("queued", "in_progress", "requires_action"):
            raise invalid_request(f"Cannot cancel run with status '{run.status}'.")
        run.status = "cancelling"
        return run_resource(run)

    def submit_tool_outputs(self, thread_id: str, run_id: str, data: Any) -> dict[str, Any]:
        run = self._get(thread_id, run_id)
        body = parse(SubmitToolOutputsBody, data)
        self._expire_if_due(run)
        if run.status != "requires_action":
            raise invalid_request(f'Runs in status "{run.status}" do not accept tool outputs.')
        if body.stream:
            raise invalid_request("The emulator does not stream runs: leave 'stream' unset.", param="stream")
        expected = [call["id"] for call in run.pending_calls]
        given = [output.tool_call_id for output in body.tool_outputs]
        if sorted(given) != sorted(expected):
            raise invalid_request(
                f"Expected tool outputs for call_ids {expected}, got {given}", param="tool_outputs"
            )
        run.outputs.update({output.tool_call_id: output.output for output in body.tool_outputs})
        step = run.steps[-1]
        for call in step.details["tool_calls"]:
            call["function"]["output"] = run.outputs[call["id"]]
        end_step(step, "completed")
        run.pending_calls = []
        run.status = "queued"
        self._start_turn(run)
        return run_resource(run)

    def list_page(self, thread_id: str, request: Request) -> dict[str, Any]:
        """The thread's runs, newest first by default (what a client reads to find a run it lost)."""
        self._threads.get(thread_id)
        runs = [run for run in self._runs.values() if run.thread.id == thread_id]
        for run in runs:
            self._expire_if_due(run)
        return page(runs, request, resource=run_resource, id_of=lambda run: run.id)

    def list_steps(self, thread_id: str, run_id: str, request: Request) -> dict[str, Any]:
        run = self._get(thread_id, run_id)
        return page(run.steps, request, resource=lambda step: step_resource(step, run), id_of=lambda s: s.id)

    def forget_thread(self, thread_id: str) -> None:
        self._runs = {key: run for key, run in self._runs.items() if run.thread.id != thread_id}

    def clear(self) -> None:
        self._runs.clear()

    def _get(self, thread_id: str, run_id: str) -> StoredRun:
        self._threads.get(thread_id)
        run = self._runs.get(run_id)
        if run is None or run.thread.id != thread_id:
            raise not_found(f"No run found with id '{run_id}'.")
        return run

    def _active_run(self, thread_id: str) -> StoredRun | None:
        for run in self._runs.values():
            if run.thread.id == thread_id:
                if run.status == "cancelling":
                    self._advance(run)  # the cancel lands
                self._expire_if_due(run)  # a run past its expiry no longer holds the thread
                if not run.final:
                    return run
        return None

    def _start_turn(self, run: StoredRun) -> None:
        """The model looks at the thread and this run's calls so far, and decides its next turn."""
        csv_file = self._given_csv(run)
        turn = policy.Turn(
            question=run.thread.latest_user_text(),
            calls=tuple(run.calls),
            outputs=dict(run.outputs),
            csv_file=csv_file.filename if csv_file is not None else None,
        )
        run.plan = self._script.next_turn() or policy.plan_for(
            turn, instructions=run.instructions, tools=run.function_tools, today=self._today()
        )
        run.polls_left = self._polls if run.plan.polls is None else run.plan.polls
        if run.plan.expires_in is not None:
            run.expires_at = self._clock() + run.plan.expires_in

    def _advance(self, run: StoredRun) -> None:
        """What a retrieve reveals: one more poll of progress, or the turn's outcome."""
        if run.final:
            return
        if run.status == "cancelling":
            self._end(run, "cancelled")
            run.cancelled_at = epoch(now())
            return
        if self._expire_if_due(run) or run.status == "requires_action":
            return
        if isinstance(run.plan, StaysQueuedPlan):
            return  # never picked up: queued until cancelled or expired
        run.started_at = run.started_at or epoch(now())
        if run.polls_left > 0 or isinstance(run.plan, NeverFinishesPlan):
            run.polls_left = max(run.polls_left - 1, 0)
            run.status = "in_progress"
            return
        self._reveal(run)

    def _expire_if_due(self, run: StoredRun) -> bool:
        if (
            run.final
            or run.status == "cancelling"
            or run.expires_at is None
            or self._clock() < run.expires_at
        ):
            return False
        self._end(run, "expired")
        return True

    def _reveal(self, run: StoredRun) -> None:
        plan = run.plan
        usage = turn_usage(run)
        if isinstance(plan, ToolCallsPlan):
            calls = [policy.ToolCall(f"call_{secrets.token_hex(12)}", name) for name, _ in plan.calls]
            run.calls += calls
            run.pending_calls = [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(arguments)},
                }
                for call, (_, arguments) in zip(calls, plan.calls, strict=True)
            ]
            step_calls = [
                {**call, "function": {**call["function"], "output": None}} for call in run.pending_calls
            ]
            run.steps.append(new_step("tool_calls", {"type": "tool_calls", "tool_calls": step_calls}))
            run.steps[-1].usage = usage
            add_usage(run, usage)
            run.status = "requires_action"
        elif isinstance(plan, MessagePlan):
            self._answer(
                run, plan.text, usage, incomplete_reason=None, parts=self._file_search(run, plan.text)
            )
            self._end(run, "completed")
            run.completed_at = epoch(now())
        elif isinstance(plan, AnalyseCsvPlan):
            self._answer(run, plan.text, usage, incomplete_reason=None, parts=self._analysis(run, plan.text))
            self._end(run, "completed")
            run.completed_at = epoch(now())
        elif isinstance(plan, IncompletePlan):
            run_reason, message_reason = _INCOMPLETE[plan.reason]
            if plan.text:
                self._answer(run, plan.text, usage, incomplete_reason=message_reason)
            else:
                add_usage(run, usage)
            run.incomplete_details = {"reason": run_reason} if run_reason else None
            self._end(run, "incomplete")
        elif isinstance(plan, FailPlan):
            code = plan.code if plan.code in _ERROR_CODES else "server_error"
            run.last_error = {"code": code, "message": plan.error_message}
            add_usage(run, {**usage, "completion_tokens": 0, "total_tokens": usage["prompt_tokens"]})
            self._end(run, "failed")
            run.failed_at = epoch(now())
        else:
            raise TypeError(f"unknown plan {plan!r}")

    def _analysis(self, run: StoredRun, text: str) -> list[dict[str, Any]] | None:
        """The code interpreter on the first CSV attached for it: the chart as ``image_file`` content, and
        the answer's text linking the summary CSV with a ``file_path`` annotation."""
        csv_file = self._given_csv(run)
        if csv_file is None:
            return None
        analysis = analyse_csv(csv_file.data)
        chart = self._files.add_generated(CHART_NAME, analysis.chart)
        summary = self._files.add_generated(SUMMARY_NAME, analysis.summary)
        link = f"sandbox:/mnt/data/{SUMMARY_NAME}"
        value = f"{text} Summary: [{SUMMARY_NAME}]({link})"
        start = value.index(link)
        annotation = {
            "type": "file_path",
            "text": link,
            "start_index": start,
            "end_index": start + len(link),
            "file_path": {"file_id": summary.id},
        }
        return [
            {"type": "image_file", "image_file": {"file_id": chart.id}},
            {"type": "text", "text": {"value": value, "annotations": [annotation]}},
        ]

    def _file_search(self, run: StoredRun, text: str) -> list[dict[str, Any]] | None:
        """file_search, when the run has it: the assistant's and the thread's vector stores searched with the
        user's message (a ``tool_calls`` step), and the answer citing each file it found, best first, with a
        ``【n†filename】`` marker and its ``file_citation`` annotation (Assistants v2 annotations name the file
        id only)."""
        if not any(tool["type"] == "file_search" for tool in run.tools):
            return None
        assistant = self._assistants.get(run.assistant_id)
        store_ids = [*assistant.tool_resources.vector_store_ids, *run.thread.tool_resources.vector_store_ids]
        question = run.thread.latest_user_text() or ""
        hits: list[SearchHit] = []
        for store_id in store_ids:
            hits += self._stores.search(store_id, question, _SEARCH_RESULTS)
        hits.sort(key=lambda hit: -hit.score)
        call = {"id": f"call_{secrets.token_hex(12)}", "type": "file_search", "file_search": {}}
        step = new_step("tool_calls", {"type": "tool_calls", "tool_calls": [call]})
        end_step(step, "completed")
        run.steps.append(step)
        value, annotations = text, []
        for index, file_id in enumerate(dict.fromkeys(hit.chunk.file_id for hit in hits[:_SEARCH_RESULTS])):
            filename = next(hit.chunk.filename for hit in hits if hit.chunk.file_id == file_id)
            marker = f"【{index}†{filename}】"
            annotations.append(
                {
                    "type": "file_citation",
                    "text": marker,
                    "start_index": len(value),
                    "end_index": len(value) + len(marker),
                    "file_citation": {"file_id": file_id},
                }
            )
            value += marker
        return [{"type": "text", "text": {"value": value, "annotations": annotations}}]

    def _given_csv(self, run: StoredRun) -> StoredFile | None:
        """The first CSV the latest user message attached for the code interpreter, when the run has it."""
        if not any(tool["type"] == "code_interpreter" for tool in run.tools):
            return None
        for attachment in run.thread.latest_user_attachments():
            stored = self._files.get(attachment["file_id"])
            uses_code = any(tool["type"] == "code_interpreter" for tool in attachment["tools"])
            if uses_code and stored.filename.lower().endswith(".csv"):
                return stored
        return None

    def _answer(
        self,
        run: StoredRun,
        text: str,
        usage: dict[str, int],
        *,
        incomplete_reason: str | None,
        parts: list[dict[str, Any]] | None = None,
    ) -> None:
        message = self._threads.add_answer(
            run.thread,
            text,
            run_id=run.id,
            assistant_id=run.assistant_id,
            incomplete_reason=incomplete_reason,
            parts=parts,
        )
        details = {"type": "message_creation", "message_creation": {"message_id": message["id"]}}
        step = new_step("message_creation", details)
        step.usage = usage
        end_step(step, "completed")
        run.steps.append(step)
        add_usage(run, usage)

    def _end(self, run: StoredRun, status: str) -> None:
        """A final status; steps still running end with it (``failed``, ``cancelled``, ``expired``)."""
        run.status = status
        run.pending_calls = []
        for step in run.steps:
            if step.status == "in_progress":
                end_step(step, "completed" if status in ("completed", "incomplete") else status)
                if status == "failed":
                    step.last_error = run.last_error
