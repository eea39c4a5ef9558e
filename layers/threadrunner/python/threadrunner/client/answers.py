"""Reading what came back: an API answer into its model or a typed error, an S3 answer (presigned POST or
GET) into a StorageError, a file's staging into a ready file or a FileRejectedError."""

from __future__ import annotations

import itertools
import json
import mimetypes
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from threadrunner.client.api_calls import Answer, ApiCall
from threadrunner.client.errors import FileRejectedError, StorageError, api_error
from threadrunner.models.api import FileOut
from threadrunner.models.records import FileStatus

USER_AGENT = "threadrunner-client"


def read_answer(call: ApiCall[Answer], status: int, content: bytes, headers: Mapping[str, str]) -> Answer:
    if status >= 400:
        raise api_error(status, _body(content), {name.lower(): value for name, value in headers.items()})
    return call.answer.model_validate_json(content)


def _body(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


def storage_error(status: int, content: bytes, what: str) -> StorageError:
    """S3 answers errors as XML: ``<Error><Code>...</Code><Message>...</Message></Error>``."""
    text = content.decode("utf-8", "replace")
    code = re.search(r"<Code>([^<]*)</Code>", text)
    message = re.search(r"<Message>([^<]*)</Message>", text)
    return StorageError(
        code.group(1) if code else f"http_{status}",
        f"{what}: {message.group(1) if message else text[:300] or f'HTTP {status}'}",
        status=status,
    )


def guess_content_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def staging_delays() -> Iterator[float]:
    """How long to wait before checking a file's staging again: first soon, then every 2 s."""
    yield from (0.1, 0.2, 0.4, 0.8, 1.6)
    yield from itertools.repeat(2.0)


def staged(file: FileOut) -> FileOut | None:
    """The file once staging has settled it (ready); None while pending; FileRejectedError if it failed."""
    if file.status == FileStatus.pending:
        return None
    if file.status == FileStatus.failed:
        raise FileRejectedError("file_failed", f"{file.filename}: {file.reason or 'staging failed'}")
    return file
