"""boto3's DynamoDB condition builders, ``Key`` and ``Attr``, imported when a store first builds a condition:
``boto3.dynamodb.conditions`` imports all of boto3 (about 100 ms), which importing a store must not cost a
function's INIT (threadrunner.aws makes the clients on first use too). Same names, same objects as boto3's."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from boto3.dynamodb import conditions


def Key(name: str) -> conditions.Key:
    from boto3.dynamodb.conditions import Key

    return Key(name)


def Attr(name: str) -> conditions.Attr:
    from boto3.dynamodb.conditions import Attr

    return Attr(name)
