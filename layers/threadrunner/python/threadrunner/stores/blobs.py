"""Objects in the files bucket, over an injected S3 client: message bodies too large for DynamoDB, and the
prefixes a cleanup empties."""

from __future__ import annotations

from typing import Any


class BlobStore:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def put_text(self, key: str, text: str) -> None:
        self._s3.put_object(
            Bucket=self._bucket, Key=key, Body=text.encode(), ContentType="text/plain; charset=utf-8"
        )

    def get_text(self, key: str) -> str:
        body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
        return str(body.read().decode())

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many there were."""
        deleted = 0
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                # DeleteObjects takes up to 1000 keys, the size of a listing page.
                response = self._s3.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": keys, "Quiet": True}
                )
                if response.get("Errors"):
                    raise RuntimeError(f"could not delete {len(response['Errors'])} objects under {prefix}")
                deleted += len(keys)
        return deleted
