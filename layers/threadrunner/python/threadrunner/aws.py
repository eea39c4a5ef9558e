"""boto3 clients, created once per process (Lambda reuses them across invocations)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3


@cache
def client(service: str) -> Any:
    return boto3.client(service)  # type: ignore[call-overload]


@cache
def table(name: str) -> Any:
    return boto3.resource("dynamodb").Table(name)


def reset_clients() -> None:
    """Forget cached clients (local mode and tests start and stop moto)."""
    client.cache_clear()
    table.cache_clear()
