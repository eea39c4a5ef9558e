"""boto3 clients, created once per process (Lambda reuses them across invocations).

boto3 is imported when the first client is made, not when a module that may make one is imported: a function's
INIT does without its ~100 ms (botocore's session, urllib3, s3transfer), and the invocation that first talks to
AWS pays it instead (``threadrunner bench imports`` prints both). X-Ray patches botocore at that moment too
(threadrunner.observability.trace_library): patching imports it.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

from threadrunner.observability import trace_library

if TYPE_CHECKING:
    from botocore.config import Config


@cache
def client_config() -> Config:
    """Explicit timeouts, well inside every function's own (the API's 30 s above all): botocore waits 60 s per
    read by default. Standard retry mode backs off with jitter on throttling and transient errors."""
    from botocore.config import Config

    return Config(connect_timeout=3, read_timeout=15, retries={"mode": "standard", "total_max_attempts": 3})


def _boto3() -> ModuleType:
    trace_library("botocore")
    import boto3

    return boto3


@cache
def client(service: str) -> Any:
    # Not the tables' own client for "dynamodb": a resource's client (de)serialises attribute values itself.
    return _boto3().client(service, config=client_config())


@cache
def _dynamodb() -> Any:
    return _boto3().resource("dynamodb", config=client_config())


@cache
def table(name: str) -> Any:
    """A DynamoDB Table; every table shares one resource (each ``boto3.resource`` call makes a client)."""
    return _dynamodb().Table(name)


@cache
def presigning_s3(endpoint_url: str | None) -> Any:
    """An S3 client for presigned URLs: SigV4 always, path-style for a local endpoint (no bucket subdomains
    on 127.0.0.1). Presigning makes no request: this client never talks to S3 itself."""
    from botocore.config import Config

    config = client_config().merge(
        Config(signature_version="s3v4", s3={"addressing_style": "path" if endpoint_url else "virtual"})
    )
    return _boto3().client("s3", endpoint_url=endpoint_url, config=config)


def reset_clients() -> None:
    """Forget cached clients (local mode and tests start and stop moto)."""
    client.cache_clear()
    _dynamodb.cache_clear()
    table.cache_clear()
    presigning_s3.cache_clear()
