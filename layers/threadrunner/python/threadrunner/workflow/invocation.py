"""What the Lambda invocation running a step has left: Check run polls inside one invocation only while the
Lambda keeps time for one more upstream call (``context.get_remaining_time_in_millis``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_remaining_ms: ContextVar[Callable[[], int] | None] = ContextVar("remaining_ms", default=None)


@contextmanager
def lambda_invocation(context: Any) -> Iterator[None]:
    """While the block runs, :func:`remaining_seconds` reads ``context`` (a Lambda context object)."""
    getter = getattr(context, "get_remaining_time_in_millis", None)
    token = _remaining_ms.set(getter if callable(getter) else None)
    try:
        yield
    finally:
        _remaining_ms.reset(token)


def remaining_seconds() -> float | None:
    """Seconds the current invocation has left; None outside a Lambda invocation (tests, scripts)."""
    getter = _remaining_ms.get()
    return None if getter is None else getter() / 1000
