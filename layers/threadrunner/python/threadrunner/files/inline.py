"""Files on the ``chat`` engine: Chat Completions take no files, so a run's text files are inlined into its
user message, each under a header naming it.

The same rules in two places: the API refuses a run on a chat thread whose files could not be inlined (422
naming ``file_ids.<i>``, nothing created), and the chat engine applies them again when it reads the files from
S3, since a run that falls back to chat from another engine was never checked for chat, and a file's bytes
past the first few KB were never decoded.
"""

from __future__ import annotations

from collections.abc import Sequence

from threadrunner.engines.base import RunFile
from threadrunner.errors import FileNotInlinable
from threadrunner.files.types import TEXT_TYPES
from threadrunner.models.records import FileRecord
from threadrunner.stores.blobs import BlobStore


def check_inlinable(files: Sequence[FileRecord], limit_bytes: int) -> None:
    """Raises FileNotInlinable for the first file that is not text or takes the run past ``limit_bytes``
    (their declared sizes: staging refused any upload larger than declared)."""
    used = 0
    for index, file in enumerate(files):
        used += file.size_bytes
        reason = _refusal(file.content_type, used, limit_bytes)
        if reason is not None:
            raise _not_inlinable(reason, index, file.id, file.filename)


def inline(message: str, files: Sequence[RunFile], blobs: BlobStore, limit_bytes: int) -> str:
    """The user message with each file's text after it. Raises FileNotInlinable naming the file that
    cannot be: not text, past the limit (its real size), not UTF-8, or its upload gone."""
    parts = [message]
    used = 0
    for index, file in enumerate(files):
        try:
            size, text = _read(file, blobs, used, limit_bytes)
        except _Refused as refused:
            raise _not_inlinable(str(refused), index, file.file_id, file.filename) from None
        used += size
        parts.append(f"{header(file)}\n{text.rstrip()}\n----- end of {file.filename} -----")
    return "\n\n".join(parts)


def header(file: RunFile) -> str:
    return f"----- file {file.filename} ({file.content_type}) -----"


class _Refused(Exception):
    pass


def _read(file: RunFile, blobs: BlobStore, used_bytes: int, limit_bytes: int) -> tuple[int, str]:
    """The file's size and text; raises _Refused with the reason it cannot be inlined."""
    reason = _refusal(file.content_type, used_bytes, limit_bytes)
    if reason is not None:
        raise _Refused(reason)
    # One ranged GET of at most what is left of the limit, plus a byte to tell "too large".
    found = blobs.find_head(file.key, limit_bytes - used_bytes + 1)
    if found is None:
        raise _Refused("its upload is no longer stored (uploads expire after a few days): upload it again")
    size, body = found
    reason = _refusal(file.content_type, used_bytes + size, limit_bytes)
    if reason is not None:
        raise _Refused(reason)
    try:
        return size, body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _Refused(f"it is not UTF-8 text (byte {error.start})") from None


def _refusal(content_type: str, used_bytes: int, limit_bytes: int) -> str | None:
    if content_type not in TEXT_TYPES:
        allowed = ", ".join(sorted(TEXT_TYPES))
        return f"it is {content_type}, and the chat engine reads only text files ({allowed})"
    if used_bytes > limit_bytes:
        return f"the run's files come to {used_bytes} bytes with it, past the {limit_bytes} the chat engine inlines"
    return None


def _not_inlinable(reason: str, index: int, file_id: str, filename: str) -> FileNotInlinable:
    field = f"file_ids.{index}"
    return FileNotInlinable(f"{field}: file {file_id} ({filename}) cannot be inlined: {reason}", field=field)
