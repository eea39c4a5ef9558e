"""Presigned URLs: POST to upload into ``uploads/``, GET to download a generated file."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from threadrunner import clock
from threadrunner.models.deferred_model import DeferredModel


class PresignedPost(DeferredModel):
    url: str
    fields: dict[str, str]
    expires_at: datetime


class FileUrls:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def upload(self, key: str, *, content_type: str, max_bytes: int, seconds: int) -> PresignedPost:
        """A browser-usable POST: exactly this key and content type, 1 to ``max_bytes`` bytes."""
        post = self._s3.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=seconds,
        )
        return PresignedPost(
            url=post["url"], fields=post["fields"], expires_at=clock.now() + timedelta(seconds=seconds)
        )

    def download(self, key: str, *, seconds: int) -> str:
        url: str = self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=seconds
        )
        return url
