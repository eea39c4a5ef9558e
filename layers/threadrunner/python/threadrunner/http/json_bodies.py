"""Request bodies are JSON, read within bounds, so that nothing a client sends can make the API answer 500.

- A body the route reads must be JSON: ``Content-Type`` ``application/json`` (any parameters), or none at all;
  anything else (``text/plain``, XML, a form) is a 415 naming the type.
- It is parsed with bounds: nested at most ``MAX_DEPTH`` levels (Python's parser recurses, and raises
  RecursionError near 1,000), integers of at most ``MAX_INT_DIGITS`` digits (``int()`` refuses more than
  ``sys.get_int_max_str_digits()`` with a ValueError), no ``NaN`` or ``Infinity`` (not JSON). Anything else
  that is not JSON, too. Each is a 422 naming ``body``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from threadrunner.errors import InvalidRequestError, ThreadrunnerError

MAX_DEPTH = 32  # the API's bodies nest 2 levels (a list in an object)
MAX_INT_DIGITS = 32  # the largest number any body takes is a size in bytes
JSON_MEDIA_TYPE = "application/json"
# Outside strings, every [ and { opens a level: strings are skipped whole (escapes included) so that
# brackets inside them do not count.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class MalformedBodyError(InvalidRequestError):
    """The body is not JSON, or not JSON the API reads (too deep, an integer too long)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"body: {reason}", field="body")


class UnsupportedMediaTypeError(ThreadrunnerError):
    """A body in another format than JSON (a 415)."""

    code = "unsupported_media_type"

    def __init__(self, media_type: str) -> None:
        super().__init__(f"the body must be {JSON_MEDIA_TYPE}, not {media_type}")
        self.media_type = media_type


def read_json(text: str) -> Any:
    """The body's JSON value; MalformedBodyError when it is not JSON or breaks a bound."""
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise MalformedBodyError(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise MalformedBodyError(
            f"not JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from error


def refused_media_type(headers: Mapping[str, str], body: str | None) -> str | None:
    """The media type of a body that is not JSON (None for JSON, no Content-Type, or no body)."""
    if not body:
        return None
    content_type = next((value for name, value in headers.items() if name.lower() == "content-type"), "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not media_type or media_type == JSON_MEDIA_TYPE:
        return None
    return media_type


def _depth(text: str) -> int:
    """How deep the brackets nest, stopping as soon as it is past the bound (a long flat body costs little)."""
    depth = deepest = 0
    for token in _TOKENS.finditer(text):
        mark = token.group()
        if mark in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return depth
            deepest = max(deepest, depth)
        elif mark in "]}":
            depth -= 1
    return deepest


def _bounded_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        raise MalformedBodyError(f"an integer of more than {MAX_INT_DIGITS} digits")
    return int(literal)


def _no_constant(name: str) -> Any:
    raise MalformedBodyError(f"{name} is not a JSON value")
