"""DynamoDB requests one at a time in moto, as atomic as the real service.

Real DynamoDB evaluates a condition expression and applies the write as one step; moto handles each
request in the caller's thread, so two concurrent conditional writes can both see the old item and both
succeed. The thread store's get-or-create and queue rely on those conditions, so local mode and the tests
serialise DynamoDB requests (re-entrant: a request handled inside another one in the same thread is fine).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from moto.core.botocore_stubber import BotocoreStubber

_one_request_at_a_time = threading.RLock()
_original_process_request = BotocoreStubber.process_request


def _process_request(self: BotocoreStubber, request: Any) -> Any:
    if "dynamodb." not in request.url:
        return _original_process_request(self, request)
    with _one_request_at_a_time:
        return _original_process_request(self, request)


@contextmanager
def atomic_dynamodb() -> Iterator[None]:
    """While the block runs, moto handles DynamoDB requests one at a time."""
    with mock.patch.object(BotocoreStubber, "process_request", _process_request):
        yield
