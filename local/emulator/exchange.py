"""One HTTP request the emulator received and the answer it gave, kept for assertions and contract checks."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict


class Exchange(BaseModel):
    model_config = ConfigDict(frozen=True)

    method: str
    path: str  # e.g. /v1/responses/resp_123
    query: dict[str, list[str]]
    request_headers: dict[str, str]  # lower-case names
    request_body: bytes
    status: int
    response_headers: dict[str, str]  # lower-case names
    response_body: bytes
    # A scripted wire fault (Plan.malformed_json): off the contract on purpose, never checked against it.
    fault: bool = False

    @property
    def request_json(self) -> Any:
        """The request body as JSON, or None when it is not JSON (multipart uploads, empty bodies)."""
        return _json_or_none(self.request_body, self.request_headers.get("content-type", ""))

    @property
    def response_json(self) -> Any:
        """The response body as JSON, or None when it is not JSON (file contents)."""
        return _json_or_none(self.response_body, self.response_headers.get("content-type", ""))


def _json_or_none(body: bytes, content_type: str) -> Any:
    if not body or "json" not in content_type:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
