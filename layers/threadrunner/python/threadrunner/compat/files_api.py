"""``/compat/v1/files``: a user's uploads (multipart, purpose ``assistants``), kept in S3 under
``compat/<user>/<file id>`` with a record in the threads table (``compat_file#<id>``), and the files a run
generated (``outputs/``: the code interpreter's charts), shown under ids of their own (``file-out_...``).

A file attached to a message for the code interpreter becomes one of the thread's files (threadrunner's
``FileRecord``, purpose ``code_interpreter``): its bytes are copied to ``uploads/``, where the staging pipeline
takes them upstream as for any upload (the API never talks to the upstream), and the run waits for it."""

from __future__ import annotations

import mimetypes
import posixpath
from collections.abc import Mapping
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from pydantic import Field

from threadrunner import clock
from threadrunner.compat.errors import invalid, not_found
from threadrunner.compat.pages import page
from threadrunner.errors import InvalidRequestError
from threadrunner.models.deferred_model import DeferredModel
from threadrunner.models.records import COMPAT_FILES_PREFIX, FilePurpose, FileRecord, OutputFile, RunRecord
from threadrunner.services.context import ApiContext
from threadrunner.services.files import check_searchable
from threadrunner.stores._dynamo import every_item, from_item, to_item
from threadrunner.stores.conditions import Key

_SK = "compat_file#"
# A request body reaches the Lambda whole (6 MB, base64 in the event): uploads stay well under it.
MAX_UPLOAD_BYTES = 4 * 1024 * 1024
_OUTPUT = "file-out_"  # a generated file: file-out_<run id suffix>_<n>


class CompatFile(DeferredModel):
    id: str
    user_id: str
    filename: str
    content_type: str
    bytes: int
    purpose: str = "assistants"
    created_at: int
    # the threadrunner files it became, by thread and purpose (attached in two threads, it is staged in each)
    staged: dict[str, str] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{COMPAT_FILES_PREFIX}{self.user_id}/{self.id}"

    def resource(self) -> dict[str, Any]:
        return _file(self.id, self.filename, self.bytes, self.created_at, self.purpose)


def create(ctx: ApiContext, user_id: str, content_type: str, body: bytes) -> dict[str, Any]:
    fields, files = _form(content_type, body)
    if "file" not in files:
        raise invalid("Missing required parameter: 'file'.", "file")
    purpose = fields.get("purpose")
    if purpose is None:
        raise invalid("Missing required parameter: 'purpose'.", "purpose")
    if purpose != "assistants":
        raise invalid(
            f"Invalid value for 'purpose': only 'assistants' is supported here, not {purpose!r}.", "purpose"
        )
    filename, data = files["file"]
    if not data:
        raise invalid("The file is empty.", "file")
    limit = min(MAX_UPLOAD_BYTES, ctx.file_settings.max_file_bytes)
    if len(data) > limit:
        raise invalid(f"The file has {len(data)} bytes; this API takes at most {limit}.", "file")
    kind = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if kind not in ctx.file_settings.allowed_file_types:
        allowed = ", ".join(ctx.file_settings.allowed_file_types)
        raise invalid(f"Files of type {kind} are not supported here (allowed: {allowed}).", "file")
    record = CompatFile(
        id=clock.new_id("file").replace("file_", "file-", 1),
        user_id=user_id,
        filename=posixpath.basename(filename) or "upload",
        content_type=kind,
        bytes=len(data),
        created_at=clock.epoch(clock.now()),
    )
    ctx.blobs.put_bytes(record.key, data, kind)
    ctx.compat_threads.table.put_item(Item=to_item(record, user_id=user_id, sk=_SK + record.id))
    return record.resource()


def retrieve(ctx: ApiContext, user_id: str, file_id: str) -> dict[str, Any]:
    if file_id.startswith(_OUTPUT):
        run, output = _output(ctx, user_id, file_id)
        return _file(
            file_id,
            output.name,
            output.size_bytes,
            clock.epoch(run.completed_at or run.created_at),
            "assistants_output",
        )
    return get(ctx, user_id, file_id).resource()


def list_page(ctx: ApiContext, user_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    items = every_item(
        ctx.compat_threads.table.query,
        KeyConditionExpression=Key("user_id").eq(user_id) & Key("sk").begins_with(_SK),
        ConsistentRead=True,
    )
    records = [from_item(CompatFile, item) for item in items]
    if (purpose := query.get("purpose")) is not None:
        records = [record for record in records if record.purpose == purpose]
    return page(
        records,
        {k: v for k, v in query.items() if k != "purpose"},
        id_of=lambda r: r.id,
        resource=CompatFile.resource,
    )


def delete(ctx: ApiContext, user_id: str, file_id: str) -> dict[str, Any]:
    record = get(ctx, user_id, file_id)
    ctx.blobs.delete(record.key)
    ctx.compat_threads.table.delete_item(Key={"user_id": user_id, "sk": _SK + file_id})
    return {"id": file_id, "object": "file", "deleted": True}


def content(ctx: ApiContext, user_id: str, file_id: str) -> bytes:
    """The file's bytes (an upload, or a file a run generated)."""
    if file_id.startswith(_OUTPUT):
        return ctx.blobs.get_bytes(_output(ctx, user_id, file_id)[1].key)
    return ctx.blobs.get_bytes(get(ctx, user_id, file_id).key)


def get(ctx: ApiContext, user_id: str, file_id: str, param: str | None = None) -> CompatFile:
    item = ctx.compat_threads.table.get_item(
        Key={"user_id": user_id, "sk": _SK + file_id}, ConsistentRead=True
    ).get("Item")
    if item is None:
        raise not_found("file", file_id, param)
    return from_item(CompatFile, item)


def stage_for_thread(
    ctx: ApiContext, user_id: str, thread_id: str, engine: str, file_id: str, param: str, purpose: FilePurpose
) -> str:
    """The threadrunner file of ``thread_id`` holding this upload for ``purpose`` (the code interpreter's input,
    or one of the thread's documents for file_search): made, and its bytes copied to ``uploads/`` for the
    staging pipeline, the first time; its id."""
    record = get(ctx, user_id, file_id, param)
    staged_key = f"{thread_id}#{purpose.value}"
    if staged_key in record.staged:
        return record.staged[staged_key]
    if purpose is FilePurpose.file_search:
        try:
            check_searchable(record.content_type, engine)
        except InvalidRequestError as error:
            raise invalid(str(error), param) from None
    staged = FileRecord(
        id=clock.new_id("file"),
        user_id=user_id,
        thread_id=thread_id,
        engine=engine,
        filename=record.filename,
        content_type=record.content_type,
        size_bytes=record.bytes,
        purpose=purpose,
        created_at=clock.now(),
    )
    ctx.files.create(staged)
    ctx.blobs.copy(record.key, staged.upload_key)  # S3 Object Created -> stage_file
    updated = record.model_copy(update={"staged": {**record.staged, staged_key: staged.id}})
    ctx.compat_threads.table.put_item(Item=to_item(updated, user_id=user_id, sk=_SK + record.id))
    return staged.id


def output_id(run: RunRecord, index: int) -> str:
    return f"{_OUTPUT}{run.id.removeprefix('run_')}_{index}"


def _output(ctx: ApiContext, user_id: str, file_id: str) -> tuple[RunRecord, OutputFile]:
    suffix, _, index = file_id.removeprefix(_OUTPUT).rpartition("_")
    run = ctx.runs.find(f"run_{suffix}") if suffix and index.isdigit() else None
    if run is None or run.user_id != user_id or int(index) >= len(run.output_files):
        raise not_found("file", file_id)
    return run, run.output_files[int(index)]


def _file(file_id: str, filename: str, size: int, created_at: int, purpose: str) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": created_at,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
    }


def _form(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """multipart/form-data: (text fields, file fields as (filename, bytes))."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise invalid("Expected a multipart/form-data body with 'file' and 'purpose'.", "file")
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts() if message.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = (filename, data)
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, files
