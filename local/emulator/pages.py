"""Cursor pages of the list endpoints (``limit``, ``order``, ``after``, ``before``), in OpenAI's list shape."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from werkzeug.wrappers import Request

from local.emulator.errors import invalid_request

T = TypeVar("T")


def page(
    objects: Sequence[T],
    request: Request,
    *,
    resource: Callable[[T], dict[str, Any]],
    id_of: Callable[[T], str],
) -> dict[str, Any]:
    """One page of ``objects`` (oldest first), as the query string of ``request`` asks (newest first by
    default); an unknown cursor is a 400, like the real service."""
    order = request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid_request(f"Invalid value for 'order': {order!r}.", param="order", code="invalid_value")
    limit = _limit(request)
    ordered = list(objects) if order == "asc" else list(reversed(objects))
    ids = [id_of(item) for item in ordered]
    if (after := request.args.get("after")) is not None:
        ordered = ordered[_position(ids, after, "after") + 1 :]
        ids = [id_of(item) for item in ordered]
    if (before := request.args.get("before")) is not None:
        ordered = ordered[: _position(ids, before, "before")]
    shown = ordered[:limit]
    # The spec types first_id/last_id as strings, so an empty page says "" rather than null.
    return {
        "object": "list",
        "data": [resource(item) for item in shown],
        "first_id": id_of(shown[0]) if shown else "",
        "last_id": id_of(shown[-1]) if shown else "",
        "has_more": len(ordered) > limit,
    }


def _limit(request: Request) -> int:
    raw = request.args.get("limit", "20")
    try:
        limit = int(raw)
    except ValueError:
        raise invalid_request("Invalid value for 'limit': expected an integer.", param="limit") from None
    if not 1 <= limit <= 100:
        raise invalid_request(
            "Invalid value for 'limit': must be 1 to 100.", param="limit", code="invalid_value"
        )
    return limit


def _position(ids: list[str], cursor: str, name: str) -> int:
    if cursor not in ids:
        raise invalid_request(f"Invalid value for '{name}': no object with id '{cursor}'.", param=name)
    return ids.index(cursor)
