"""moto-backed AWS for integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws
from threadrunner import aws

from local.atomic_dynamodb import atomic_dynamodb
from local.resources import create_tables


@contextmanager
def moto_tables(prefix: str = "test") -> Iterator[dict[str, Any]]:
    """DynamoDB tables built from threadrunner.stores.tables, named ``<prefix>-<logical name>``."""
    with mock_aws(), atomic_dynamodb():
        aws.reset_clients()
        client = boto3.client("dynamodb", region_name="us-east-1")
        names = create_tables(client, prefix)
        yield {
            logical: boto3.resource("dynamodb", region_name="us-east-1").Table(name)
            for logical, name in names.items()
        }
    aws.reset_clients()
