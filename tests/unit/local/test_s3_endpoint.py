"""The local S3 endpoint checks presigned requests the way S3 does: boto3 signs, httpx sends, a fake S3
(a dict) stores. POST policy conditions, expiry, signature, extra fields; presigned GET signature and expiry."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from local.s3_endpoint import S3Endpoint

ACCESS, SECRET, REGION, BUCKET = "AKIDLOCAL", "local-secret", "us-east-1", "files"
KEY = "uploads/alice/file_01"


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str) -> dict[str, Any]:
        self.objects[f"{Bucket}/{Key}"] = (Body, ContentType)
        return {"ETag": '"etag"'}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        body, content_type = self.objects[f"{Bucket}/{Key}"]
        return {"Body": _Body(body), "ContentType": content_type}


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self) -> bytes:
        return self._data


class World:
    def __init__(self) -> None:
        self.s3 = FakeS3()
        self.events: list[dict[str, Any]] = []
        self.notified = threading.Event()
        self.clock = datetime.now(UTC)
        self.endpoint = S3Endpoint(
            region=REGION,
            account="123456789012",
            credentials=lambda: (ACCESS, SECRET),
            s3=lambda: self.s3,
            on_created=self.notify,
            now=lambda: self.clock,
        )

    def notify(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.notified.set()

    def signer(self, secret: str = SECRET) -> Any:
        return boto3.client(
            "s3",
            region_name=REGION,
            endpoint_url=self.endpoint.url,
            aws_access_key_id=ACCESS,
            aws_secret_access_key=secret,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def presigned_post(self, size: int = 10, signer: Any = None) -> dict[str, Any]:
        post: dict[str, Any] = (signer or self.signer()).generate_presigned_post(
            Bucket=BUCKET,
            Key=KEY,
            Fields={"Content-Type": "text/csv"},
            Conditions=[{"Content-Type": "text/csv"}, ["content-length-range", 1, size]],
            ExpiresIn=900,
        )
        return post


@pytest.fixture
def world() -> Iterator[World]:
    world = World()
    with world.endpoint:
        yield world


def _post(post: dict[str, Any], data: bytes, **changes: str) -> httpx.Response:
    fields = {**post["fields"], **changes}
    return httpx.post(post["url"], data=fields, files={"file": ("a.csv", data, "text/csv")})


def _wait_for_event(world: World) -> dict[str, Any]:
    # the notification comes from its own thread, as S3 sends it on its own
    assert world.notified.wait(timeout=5), "no ObjectCreated event"
    return world.events[0]


def test_a_presigned_post_within_its_policy_stores_the_object_and_notifies(world: World) -> None:
    response = _post(world.presigned_post(size=10), b"a,b\n1,2\n")
    assert response.status_code == 204, response.text
    assert world.s3.objects[f"{BUCKET}/{KEY}"] == (b"a,b\n1,2\n", "text/csv")
    event = _wait_for_event(world)  # the shape S3 sends to EventBridge
    assert (event["source"], event["detail-type"], event["detail"]["reason"]) == (
        "aws.s3",
        "Object Created",
        "PostObject",
    )
    detail = event["detail"]
    assert (detail["bucket"]["name"], detail["object"]["key"], detail["object"]["size"]) == (BUCKET, KEY, 8)


@pytest.mark.parametrize(
    ("data", "changes", "status", "code"),
    [
        (b"0123456789A", {}, 400, "EntityTooLarge"),  # one byte over the declared size
        (b"", {}, 400, "EntityTooSmall"),
        (b"a", {"Content-Type": "image/png"}, 403, "AccessDenied"),  # not the fixed content type
        (b"a", {"key": "uploads/mallory/file_01"}, 403, "AccessDenied"),  # another key
        (b"a", {"x-amz-meta-extra": "1"}, 403, "AccessDenied"),  # a field the policy does not cover
        (b"a", {"x-amz-signature": "0" * 64}, 403, "SignatureDoesNotMatch"),
    ],
)
def test_a_post_outside_its_policy_is_refused_and_nothing_is_stored(
    world: World, data: bytes, changes: dict[str, str], status: int, code: str
) -> None:
    response = _post(world.presigned_post(size=10), data, **changes)
    assert (response.status_code, f"<Code>{code}</Code>" in response.text) == (status, True), response.text
    assert world.s3.objects == {} and world.events == []


def test_a_post_signed_with_another_secret_or_after_expiry_is_refused(world: World) -> None:
    forged = world.presigned_post(signer=world.signer(secret="guess"))
    assert _post(forged, b"a").status_code == 403
    post = world.presigned_post()
    world.clock += timedelta(seconds=901)
    response = _post(post, b"a")
    assert response.status_code == 403 and "Policy expired" in response.text
    assert world.s3.objects == {}


def test_a_presigned_get_serves_the_object_until_it_expires(world: World) -> None:
    key = "outputs/thr_1/run_1/chart 1.png"
    world.s3.put_object(Bucket=BUCKET, Key=key, Body=b"\x89PNG", ContentType="image/png")
    url = world.signer().generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=60
    )
    response = httpx.get(url)
    assert (response.status_code, response.content, response.headers["content-type"]) == (
        200,
        b"\x89PNG",
        "image/png",
    )
    assert httpx.get(url.replace("chart%201", "chart%202")).status_code == 403  # the signature covers the key
    assert httpx.get(url.split("?")[0]).status_code == 403  # unsigned: the bucket is private
    world.clock += timedelta(seconds=61)
    assert "Request has expired" in httpx.get(url).text
