"""Objects in the files bucket, over an injected S3 client: message bodies too large for DynamoDB, uploads
and their staged copies, generated files, and the prefixes a cleanup empties."""

from __future__ import annotations

from typing import Any, BinaryIO


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

    def size_and_head(self, key: str, head_bytes: int) -> tuple[int, bytes]:
        """An object's real size and its first bytes (a ranged GET: the rest is never read)."""
        response = self._s3.get_object(Bucket=self._bucket, Key=key, Range=f"bytes=0-{head_bytes - 1}")
        head = response["Body"].read()
        content_range = response.get("ContentRange")  # "bytes 0-n/<size>"
        size = int(content_range.rsplit("/", 1)[1]) if content_range else int(response["ContentLength"])
        return size, head

    def find_head(self, key: str, head_bytes: int) -> tuple[int, bytes] | None:
        """As size_and_head; None when there is no such object (deleted, or expired by a lifecycle rule)."""
        try:
            return self.size_and_head(key, head_bytes)
        except self._s3.exceptions.NoSuchKey:
            return None

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)

    def get_bytes(self, key: str) -> bytes:
        return bytes(self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read())

    def open(self, key: str) -> BinaryIO:
        """A streaming read of the whole object."""
        body: BinaryIO = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
        return body

    def upload(self, key: str, stream: BinaryIO, content_type: str) -> None:
        """Stream to S3 in parts (upload_fileobj): large files are never held in memory whole."""
        self._s3.upload_fileobj(stream, self._bucket, key, ExtraArgs={"ContentType": content_type})

    def copy(self, source: str, destination: str) -> bool:
        """A server-side copy within the bucket (never through this process); False when ``source`` is gone."""
        try:
            self._s3.copy_object(
                Bucket=self._bucket, Key=destination, CopySource={"Bucket": self._bucket, "Key": source}
            )
        except self._s3.exceptions.NoSuchKey:
            return False
        return True

    def delete(self, key: str) -> None:
        """Deleting an object that is not there is not an error (as in S3)."""
        self._s3.delete_object(Bucket=self._bucket, Key=key)

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
