"""The OpenAI error envelope ``{"error": {"message", "type", "param", "code"}}`` and the statuses the
Assistants API answered with: the SDK turns them into its typed exceptions (openai.NotFoundError, ...)."""

from __future__ import annotations

from typing import Any


class CompatError(Exception):
    """A refusal in the Assistants API's words."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        error_type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.param = param
        self.code = code
        self.error_type = error_type

    def body(self) -> dict[str, Any]:
        return {
            "error": {"message": str(self), "type": self.error_type, "param": self.param, "code": self.code}
        }


def invalid(message: str, param: str | None = None) -> CompatError:
    return CompatError(400, message, param=param)


def not_found(kind: str, object_id: str, param: str | None = None) -> CompatError:
    """The Assistants API's 404: another user's object is as missing as one that never was."""
    return CompatError(404, f"No {kind} found with id '{object_id}'.", param=param)
