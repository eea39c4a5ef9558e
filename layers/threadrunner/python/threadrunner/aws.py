"""boto3 clients, created once per process (Lambda reuses them across invocations)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Explicit timeouts, well inside every function's own (the API's 30 s above all): botocore waits 60 s per
# read by default. Standard retry mode backs off with jitter on throttling and transient errors.
CLIENT_CONFIG = Config(
    connect_timeout=3, read_timeout=15, retries={"mode": "standard", "total_max_attempts": 3}
)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=CLIENT_CONFIG)  # type: ignore[call-overload]


@cache
def table(name: str) -> Any:
    return boto3.resource("dynamodb", config=CLIENT_CONFIG).Table(name)


@cache
def presigning_s3(endpoint_url: str | None) -> Any:
    """An S3 client for presigned URLs: SigV4 always, path-style for a local endpoint (no bucket subdomains
    on 127.0.0.1). Presigning makes no request: this client never talks to S3 itself."""
    config = CLIENT_CONFIG.merge(
        Config(signature_version="s3v4", s3={"addressing_style": "path" if endpoint_url else "virtual"})
    )
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget cached clients (local mode and tests start and stop moto)."""
    client.cache_clear()
    table.cache_clear()
    presigning_s3.cache_clear()
