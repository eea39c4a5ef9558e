"""Files: uploaded bytes with a purpose, listed newest first by default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from threadrunner.clock import epoch, now

from local.emulator.errors import invalid_request, not_found
from local.emulator.items import new_id

Purpose = Literal["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]


# ``expires_after.seconds`` bounds, as the real service checks them.
_MIN_EXPIRY, _MAX_EXPIRY = 3600, 2_592_000


@dataclass(frozen=True)
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int
    expires_at: int | None = None

    def resource(self) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }
        if self.expires_at is not None:
            resource["expires_at"] = self.expires_at
        return resource


class FileStore:
    """Not thread-safe by itself: the server holds its lock around every request."""

    def __init__(self) -> None:
        self._files: dict[str, StoredFile] = {}

    def create(
        self,
        filename: str | None,
        data: bytes | None,
        purpose: str | None,
        expires_after: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        if data is None:
            raise invalid_request(
                "Missing required parameter: 'file'.", param="file", code="missing_required_parameter"
            )
        if purpose is None:
            raise invalid_request(
                "Missing required parameter: 'purpose'.", param="purpose", code="missing_required_parameter"
            )
        if purpose not in get_args(Purpose):
            raise invalid_request(
                f"Invalid value for 'purpose': {purpose!r}.", param="purpose", code="invalid_value"
            )
        created = epoch(now())
        expires_at = created + _expiry_seconds(expires_after) if expires_after else None
        stored = StoredFile(new_id("file", "-"), filename or "upload", purpose, data, created, expires_at)
        self._files[stored.id] = stored
        return stored.resource()

    def add_generated(self, filename: str, data: bytes) -> StoredFile:
        """A file a run's code interpreter wrote (Assistants: served by ``GET /v1/files/{id}/content``)."""
        stored = StoredFile(new_id("file", "-"), filename, "assistants_output", data, epoch(now()))
        self._files[stored.id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile:
        stored = self._files.get(file_id)
        if stored is None:
            raise not_found(f"No such File object: {file_id}", param="id")
        return stored

    def exists(self, file_id: str) -> bool:
        return file_id in self._files

    def delete(self, file_id: str) -> dict[str, Any]:
        self.get(file_id)
        del self._files[file_id]
        return {"id": file_id, "object": "file", "deleted": True}

    def list(self, *, purpose: str | None, order: str, limit: int, after: str | None) -> dict[str, Any]:
        files = list(self._files.values())  # in upload order
        if order != "asc":
            files.reverse()
        if purpose is not None:
            files = [stored for stored in files if stored.purpose == purpose]
        if after is not None:
            ids = [stored.id for stored in files]
            files = files[ids.index(after) + 1 :] if after in ids else []
        page = files[:limit]
        return {
            "object": "list",
            "data": [stored.resource() for stored in page],
            # Strings in the spec, so an empty page says "" rather than null.
            "first_id": page[0].id if page else "",
            "last_id": page[-1].id if page else "",
            "has_more": len(files) > limit,
        }

    def clear(self) -> None:
        self._files.clear()


def _expiry_seconds(expires_after: dict[str, str]) -> int:
    if expires_after.get("anchor") != "created_at":
        raise invalid_request(
            "Invalid value for 'expires_after.anchor': expected 'created_at'.",
            param="expires_after.anchor",
            code="invalid_value",
        )
    try:
        seconds = int(expires_after.get("seconds", ""))
    except ValueError:
        seconds = -1
    if not _MIN_EXPIRY <= seconds <= _MAX_EXPIRY:
        raise invalid_request(
            f"Invalid value for 'expires_after.seconds': must be between {_MIN_EXPIRY} and {_MAX_EXPIRY}.",
            param="expires_after.seconds",
            code="invalid_value",
        )
    return seconds
