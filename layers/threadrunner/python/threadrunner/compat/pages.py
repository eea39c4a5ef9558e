"""The Assistants API's lists: ``limit`` (1 to 100, default 20), ``order`` (``desc`` by default, by creation),
``after`` and ``before`` (object ids of the previous page), answered as ``{"object": "list", "data",
"first_id", "last_id", "has_more"}``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from threadrunner.compat.errors import invalid

T = TypeVar("T")


def page(
    items: Sequence[T],
    query: Mapping[str, str],
    *,
    id_of: Callable[[T], str],
    resource: Callable[[T], dict[str, Any]],
) -> dict[str, Any]:
    """One page of ``items`` (oldest first) as the query asks for it."""
    limit = _limit(query.get("limit"))
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid(f"Invalid 'order': expected 'asc' or 'desc', got {order!r}.", "order")
    ordered = list(items) if order == "asc" else list(reversed(items))
    ids = [id_of(item) for item in ordered]
    if (after := query.get("after")) is not None:
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
        ids = [id_of(item) for item in ordered]
    if (before := query.get("before")) is not None:
        ordered = ordered[: ids.index(before)] if before in ids else []
    chosen = ordered[:limit]
    data = [resource(item) for item in chosen]
    return {
        "object": "list",
        "data": data,
        # The document types first_id and last_id as strings: an empty page says "" (as the emulator's).
        "first_id": data[0]["id"] if data else "",
        "last_id": data[-1]["id"] if data else "",
        "has_more": len(ordered) > limit,
    }


def _limit(value: str | None) -> int:
    if value is None:
        return 20
    try:
        limit = int(value)
    except ValueError:
        raise invalid(f"Invalid 'limit': expected an integer, got {value!r}.", "limit") from None
    if not 1 <= limit <= 100:
        raise invalid(f"Invalid 'limit': {limit} is not between 1 and 100.", "limit")
    return limit
