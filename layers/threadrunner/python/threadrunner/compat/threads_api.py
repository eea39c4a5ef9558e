"""``/compat/v1/threads`` and their messages: a facade thread is a threadrunner thread (``thread_X`` is
``thr_X``) of the assistant ``compat`` (each run names its own); its messages are the thread's log (the runs'
user messages and answers) and, after them, the user messages waiting for the next run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from threadrunner import clock
from threadrunner.compat import files_api, ids
from threadrunner.compat.errors import invalid, not_found
from threadrunner.compat.pages import page
from threadrunner.compat.thread_store import COMPAT_ASSISTANT, MAX_WAITING, CompatThread, WaitingMessage
from threadrunner.compat.wire import CreateMessage, CreateThread, ModifyThread, parse
from threadrunner.errors import NotFoundError
from threadrunner.models.records import FilePurpose, MessageRecord, MessageRole, RunRecord, ThreadRecord
from threadrunner.services import threads as thread_service
from threadrunner.services.context import ApiContext

_LOG_PAGE = 100
# What reads an attached file: the code interpreter (the run's input), file_search (one of the thread's documents).
_ATTACHMENT_TOOLS = {"code_interpreter": FilePurpose.code_interpreter, "file_search": FilePurpose.file_search}


def create(ctx: ApiContext, user_id: str, data: Any) -> dict[str, Any]:
    body = parse(CreateThread, data)
    _no_tool_resources(body.tool_resources)
    given = body.messages or []
    messages = [_waiting(message, f"messages[{index}]") for index, message in enumerate(given)]
    thread = new_thread(ctx, user_id)
    messages = [
        _with_files(ctx, thread, waiting, message, f"messages[{index}]")
        for index, (waiting, message) in enumerate(zip(messages, given, strict=True))
    ]
    extras = CompatThread(
        user_id=user_id, thread_id=thread.id, metadata=body.metadata or {}, waiting=messages
    )
    ctx.compat_threads.save(extras)
    return thread_resource(thread, extras)


def new_thread(ctx: ApiContext, user_id: str) -> ThreadRecord:
    """A threadrunner thread of its own (a fresh purpose: never an earlier thread reused)."""
    thread, _ = ctx.threads.get_or_create(
        user_id=user_id,
        assistant=COMPAT_ASSISTANT,
        purpose=clock.new_id("compat"),
        engine=ctx.run_settings.engine,
        max_age_hours=ctx.run_settings.thread_max_age_hours,
        ttl_days=ctx.run_settings.thread_ttl_days,
    )
    return thread


def retrieve(ctx: ApiContext, user_id: str, facade_id: str) -> dict[str, Any]:
    thread = get_thread(ctx, user_id, facade_id)
    return thread_resource(thread, ctx.compat_threads.get(user_id, thread.id))


def update(ctx: ApiContext, user_id: str, facade_id: str, data: Any) -> dict[str, Any]:
    thread = get_thread(ctx, user_id, facade_id)
    body = parse(ModifyThread, data)
    _no_tool_resources(body.tool_resources)
    for _ in range(3):
        extras = ctx.compat_threads.get(user_id, thread.id)
        if "metadata" in body.model_fields_set:
            extras = extras.model_copy(update={"metadata": body.metadata or {}})
        if ctx.compat_threads.save(extras):
            return thread_resource(thread, ctx.compat_threads.get(user_id, thread.id))
    raise invalid("The thread changed while it was being updated; try again.")


def delete(ctx: ApiContext, user_id: str, facade_id: str) -> dict[str, Any]:
    thread = get_thread(ctx, user_id, facade_id)
    # As the Assistants API: a thread goes with whatever runs on it (they are cancelled).
    thread_service.delete_thread(ctx, user_id, thread.id, force=True)
    return {"id": facade_id, "object": "thread.deleted", "deleted": True}


def create_message(ctx: ApiContext, user_id: str, facade_id: str, data: Any) -> dict[str, Any]:
    thread = get_thread(ctx, user_id, facade_id)
    body = parse(CreateMessage, data)
    if thread.active_run_id:
        raise invalid(f"Can't add messages to {facade_id} while a run {thread.active_run_id} is active.")
    message = _with_files(ctx, thread, _waiting(body, ""), body, "")
    for _ in range(3):
        extras = ctx.compat_threads.get(user_id, thread.id)
        if len(extras.waiting) >= MAX_WAITING:
            raise invalid(f"At most {MAX_WAITING} messages may wait for a run on one thread.")
        if ctx.compat_threads.save(extras.model_copy(update={"waiting": [*extras.waiting, message]})):
            return waiting_resource(message, facade_id)
    raise invalid("The thread changed while the message was being added; try again.")


def list_messages(ctx: ApiContext, user_id: str, facade_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    thread = get_thread(ctx, user_id, facade_id)
    resources = all_messages(ctx, thread)
    if (run_id := query.get("run_id")) is not None:
        resources = [message for message in resources if message["run_id"] == run_id]
    return page(resources, query, id_of=lambda message: str(message["id"]), resource=dict)


def retrieve_message(ctx: ApiContext, user_id: str, facade_id: str, message_id: str) -> dict[str, Any]:
    thread = get_thread(ctx, user_id, facade_id)
    wanted = ids.message_out(ids.message_in(message_id))
    for message in all_messages(ctx, thread):
        if message["id"] == wanted:
            return message
    raise not_found("message", message_id)


def all_messages(ctx: ApiContext, thread: ThreadRecord) -> list[dict[str, Any]]:
    """The thread's messages oldest first: its log (without tool entries), then those waiting for a run."""
    facade_id = ids.thread_out(thread.id)
    runs = {run.id: run for run in ctx.runs.list_for_thread(thread.id)}
    resources = []
    after = None
    while True:
        entries, more = ctx.messages.page(thread.id, limit=_LOG_PAGE, after=after)
        resources += [
            log_resource(entry, facade_id, runs.get(entry.run_id))
            for entry in entries
            if entry.role in (MessageRole.user, MessageRole.assistant)
        ]
        if not more or not entries:
            break
        after = entries[-1].message_id
    waiting = ctx.compat_threads.get(thread.user_id, thread.id).waiting
    return resources + [waiting_resource(message, facade_id) for message in waiting]


def get_thread(ctx: ApiContext, user_id: str, facade_id: str, param: str | None = None) -> ThreadRecord:
    thread_id = ids.thread_in(facade_id, param)
    try:
        thread = ctx.threads.get(user_id, thread_id)
    except NotFoundError:
        raise not_found("thread", facade_id, param) from None
    if thread.assistant != COMPAT_ASSISTANT:  # a thread of the main API: not one of this API's
        raise not_found("thread", facade_id, param)
    return thread


def thread_resource(thread: ThreadRecord, extras: CompatThread) -> dict[str, Any]:
    return {
        "id": ids.thread_out(thread.id),
        "object": "thread",
        "created_at": clock.epoch(thread.created_at),
        "metadata": extras.metadata,
        "tool_resources": {},
    }


def log_resource(entry: MessageRecord, facade_thread_id: str, run: RunRecord | None) -> dict[str, Any]:
    """A log entry as a message; an answer shows the images its run generated (``image_file``, downloadable
    with ``files.content``)."""
    created = clock.epoch(entry.created_at)
    is_answer = entry.role is MessageRole.assistant
    images = []
    if is_answer and run is not None:
        images = [
            files_api.output_id(run, index)
            for index, output in enumerate(run.output_files)
            if output.content_type.startswith("image/")
        ]
    return _message(
        ids.message_out(entry.message_id),
        facade_thread_id,
        role=entry.role.value,
        text=entry.content or "",
        created_at=created,
        run_id=entry.run_id,
        assistant_id=run.assistant if is_answer and run is not None else None,
        images=images,
    )


def waiting_resource(message: WaitingMessage, facade_thread_id: str) -> dict[str, Any]:
    return _message(
        message.id,
        facade_thread_id,
        role="user",
        text=message.text,
        created_at=message.created_at,
        metadata=message.metadata,
        attachments=message.attachments,
    )


def _message(
    message_id: str,
    thread_id: str,
    *,
    role: str,
    text: str,
    created_at: int,
    run_id: str | None = None,
    assistant_id: str | None = None,
    metadata: dict[str, str] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    images: list[str] | None = None,
) -> dict[str, Any]:
    content: list[dict[str, Any]] = [
        {"type": "image_file", "image_file": {"file_id": file_id, "detail": "auto"}}
        for file_id in images or []
    ]
    content.append({"type": "text", "text": {"value": text, "annotations": []}})
    return {
        "id": message_id,
        "object": "thread.message",
        "created_at": created_at,
        "thread_id": thread_id,
        "status": "completed",
        "incomplete_details": None,
        "completed_at": created_at,
        "incomplete_at": None,
        "role": role,
        "content": content,
        "assistant_id": assistant_id,
        "run_id": run_id,
        "attachments": attachments or [],
        "metadata": metadata or {},
    }


def _waiting(message: CreateMessage, where: str) -> WaitingMessage:
    prefix = f"{where}." if where else ""
    if message.role != "user":
        raise invalid("Only user messages can be added to a thread here.", f"{prefix}role")
    for index, attachment in enumerate(message.attachments or []):
        for number, tool in enumerate(attachment.tools):
            if tool.get("type") not in _ATTACHMENT_TOOLS:
                where = f"{prefix}attachments[{index}].tools[{number}].type"
                raise invalid("An attachment is for code_interpreter or file_search.", where)
    if not isinstance(message.content, str) and any(part.get("type") != "text" for part in message.content):
        raise invalid("Only text content is supported by this API.", f"{prefix}content")
    text = message.text()
    if not text.strip():
        raise invalid("A message needs some text.", f"{prefix}content")
    return WaitingMessage(
        id=clock.new_id("msg"),
        created_at=clock.epoch(clock.now()),
        text=text,
        metadata=message.metadata or {},
    )


def _with_files(
    ctx: ApiContext, thread: ThreadRecord, waiting: WaitingMessage, message: CreateMessage, where: str
) -> WaitingMessage:
    """The message with its attachments made the thread's files: the run's inputs (code interpreter), the
    thread's documents (file_search); both staged by the upload pipeline."""
    prefix = f"{where}." if where else ""
    attachments = message.attachments or []
    inputs: list[str] = []
    documents: list[str] = []
    for index, attachment in enumerate(attachments):
        for tool in sorted({str(tool.get("type")) for tool in attachment.tools} or {"code_interpreter"}):
            purpose = _ATTACHMENT_TOOLS[tool]
            staged = files_api.stage_for_thread(
                ctx,
                thread.user_id,
                thread.id,
                thread.engine,
                attachment.file_id,
                f"{prefix}attachments[{index}].file_id",
                purpose,
            )
            (documents if purpose is FilePurpose.file_search else inputs).append(staged)
    return waiting.model_copy(
        update={
            "attachments": [attachment.model_dump(exclude_none=True) for attachment in attachments],
            "file_ids": inputs,
            "document_ids": documents,
        }
    )


def _no_tool_resources(resources: dict[str, Any] | None) -> None:
    if resources and any(resources.values()):
        raise invalid("tool_resources are not supported by this API.", "tool_resources")
