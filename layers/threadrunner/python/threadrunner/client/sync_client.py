"""``Threadrunner``: the API from Python, blocking. The same calls as AsyncThreadrunner (api_calls), the same
reading of the event log (run_following)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from types import TracebackType

import httpx

from threadrunner.client import api_calls
from threadrunner.client.answers import (
    USER_AGENT,
    guess_content_type,
    read_answer,
    staged,
    staging_delays,
    storage_error,
)
from threadrunner.client.api_calls import MAX_EVENT_WAIT_SECONDS, Answer, ApiCall
from threadrunner.client.errors import ConnectionLostError
from threadrunner.client.run_following import (
    RECHECK_SECONDS,
    RECONNECTABLE,
    Deadline,
    EventCursor,
    RunWatch,
    is_settled,
)
from threadrunner.models.api import FileOut, OutputFileOut, ThreadOut
from threadrunner.models.api_runs import ApprovalIn, RunOut, RunPage, RunTraceOut, ToolOutputIn
from threadrunner.models.records import FilePurpose
from threadrunner.models.run_events import RunEvent
from threadrunner.models.usage import UsageOut


class _Api:
    def __init__(
        self, base_url: str, token: str, timeout: float, transport: httpx.BaseTransport | None
    ) -> None:
        self._token = token
        self._timeout = timeout
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )

    def send(self, call: ApiCall[Answer]) -> Answer:
        try:
            response = self.http.request(
                call.method,
                call.path,
                params=call.query,
                json=call.json_body(),
                headers={"Authorization": f"Bearer {self._token}", **call.headers},
                timeout=httpx.Timeout(self._timeout, read=self._timeout + call.holds_seconds),
            )
        except httpx.TransportError as error:
            raise ConnectionLostError("connection_failed", f"{call.method} {call.path}: {error!r}") from error
        return read_answer(call, response.status_code, response.content, response.headers)


class Threads:
    def __init__(self, api: _Api) -> None:
        self._api = api

    def get_or_create(
        self, assistant: str, purpose: str = "default", *, max_age_hours: int | None = None
    ) -> ThreadOut:
        """The caller's current thread for this assistant and purpose, or a new one."""
        return self._api.send(api_calls.get_or_create_thread(assistant, purpose, max_age_hours))

    def get(self, thread_id: str) -> ThreadOut:
        return self._api.send(api_calls.get_thread(thread_id))


class Runs:
    def __init__(self, api: _Api) -> None:
        self._api = api

    def create(
        self,
        thread_id: str,
        message: str,
        *,
        file_ids: Sequence[str] = (),
        if_busy: str = "reject",
        idempotency_key: str | None = None,
    ) -> RunOut:
        """Start a run (queued); ``if_busy="enqueue"`` queues it behind the thread's active run."""
        return self._api.send(api_calls.create_run(thread_id, message, file_ids, if_busy, idempotency_key))

    def get(self, run_id: str) -> RunOut:
        return self._api.send(api_calls.get_run(run_id))

    def cancel(self, run_id: str) -> RunOut:
        return self._api.send(api_calls.cancel_run(run_id))

    def trace(self, run_id: str) -> RunTraceOut:
        return self._api.send(api_calls.run_trace(run_id))

    def events(self, run_id: str, *, after: int = 0) -> Iterator[RunEvent]:
        """The run's events after seq ``after``, oldest first, as they happen, until the one that ends the run.
        A dropped connection, a gateway error or a 429 is retried after a backoff from the last event
        yielded: no gap, no duplicate."""
        cursor = EventCursor(run_id, after)
        while not cursor.ended:
            yield from self._next_events(cursor, MAX_EVENT_WAIT_SECONDS)

    def wait(self, run_id: str, *, timeout: float | None = None) -> RunOut:
        """The run once nothing happens without the caller: it ended, or it is ``requires_action`` with its
        ``required_action`` (answer with submit_tool_outputs or approve, then wait again). Follows the
        event log; WaitTimeoutError after ``timeout`` seconds."""
        run = self.get(run_id)
        watch = RunWatch(run_id, timeout)
        while not is_settled(run):
            if watch.cursor.ended:  # ended in the log, not yet in the record: look again shortly
                time.sleep(watch.deadline.remaining(RECHECK_SECONDS))
            else:
                watch.see(self._next_events(watch.cursor, watch.poll_seconds()))
            if watch.should_look:
                run = self.get(run_id)
        return run

    def submit_tool_outputs(self, run_id: str, outputs: Sequence[ToolOutputIn]) -> RunOut:
        """Answer every call of a ``submit_tool_outputs`` required action at once; the run goes on."""
        return self._api.send(api_calls.submit_tool_outputs(run_id, outputs))

    def approve(self, run_id: str, decisions: Sequence[ApprovalIn]) -> RunOut:
        """Approve or deny every call of an ``approve_tool_calls`` required action at once."""
        return self._api.send(api_calls.approve(run_id, decisions))

    def list(self, thread_id: str, *, limit: int | None = None, after: str | None = None) -> RunPage:
        """The thread's runs, newest first; pass ``next`` as ``after`` for the following page."""
        return self._api.send(api_calls.list_runs(thread_id, limit, after))

    def _next_events(self, cursor: EventCursor, wait: float) -> Sequence[RunEvent]:
        while True:
            try:
                page = self._api.send(api_calls.run_events(cursor.run_id, cursor.after, wait))
            except RECONNECTABLE as error:
                time.sleep(cursor.backoff.delay_after(error))
                continue
            cursor.backoff.reset()
            return cursor.take(page)


class Files:
    def __init__(self, api: _Api) -> None:
        self._api = api

    def upload(
        self,
        path: str | Path,
        thread_id: str,
        *,
        purpose: FilePurpose = FilePurpose.code_interpreter,
        content_type: str | None = None,
        timeout: float = 120,
    ) -> FileOut:
        """Declare the file, send its bytes through the presigned POST, and return it once staging made it
        ready (FileRejectedError if staging failed it, WaitTimeoutError after ``timeout`` seconds)."""
        path = Path(path)
        content = path.read_bytes()
        content_type = content_type or guess_content_type(path)
        created = self._api.send(
            api_calls.create_file(thread_id, path.name, content_type, len(content), purpose)
        )
        try:
            sent = self._api.http.post(
                created.upload.url,
                data=created.upload.fields,
                files={"file": (path.name, content, content_type)},
            )
        except httpx.TransportError as error:
            raise ConnectionLostError("connection_failed", f"upload of {path.name}: {error!r}") from error
        if sent.status_code >= 300:
            raise storage_error(sent.status_code, sent.content, f"upload of {path.name}")
        deadline = Deadline(timeout, f"file {created.id} still pending")
        delays = staging_delays()
        while (file := staged(self._api.send(api_calls.get_file(created.id)))) is None:
            time.sleep(deadline.remaining(next(delays)))
        return file

    def get(self, file_id: str) -> FileOut:
        return self._api.send(api_calls.get_file(file_id))

    def download(self, file: OutputFileOut | str) -> bytes:
        """The bytes of a file a run generated (one of its ``files``), through its presigned URL."""
        url = file if isinstance(file, str) else file.url
        try:
            answer = self._api.http.get(url)
        except httpx.TransportError as error:
            raise ConnectionLostError("connection_failed", f"download: {error!r}") from error
        if answer.status_code >= 300:
            raise storage_error(answer.status_code, answer.content, "download")
        return answer.content


class Usage:
    def __init__(self, api: _Api) -> None:
        self._api = api

    def get(self, *, from_: date | None = None, to: date | None = None) -> UsageOut:
        """The caller's runs, tokens and estimated cost by UTC day."""
        return self._api.send(api_calls.get_usage(from_, to))


class Threadrunner:
    """The threadrunner API at ``base_url`` (the local stack's http://127.0.0.1:8765 or a deployment's
    ApiUrl) with a bearer ``token``. ``transport`` replaces httpx's (tests)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._api = _Api(base_url, token, timeout, transport)
        self.threads = Threads(self._api)
        self.runs = Runs(self._api)
        self.files = Files(self._api)
        self.usage = Usage(self._api)

    def close(self) -> None:
        self._api.http.close()

    def __enter__(self) -> Threadrunner:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
