"""S3's Object Created events for server-side copies in local mode.

In AWS, every object created in the bucket (a presigned POST, a PutObject, a CopyObject) goes to EventBridge,
whose rule hands ``uploads/`` to stage_file. Locally the S3 endpoint (local/s3_endpoint.py) sends the events of
presigned POSTs; a copy made by a Lambda through moto (the Assistants-compatible API copies an upload into
``uploads/``) sends its event from here, asynchronously, as EventBridge does."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from moto.s3.models import S3Backend
from threadrunner import clock

from local.s3_endpoint import object_created_event

_original_copy_object = S3Backend.copy_object


@contextmanager
def copies_send_events(
    *, bucket: str, region: str, account: str, on_created: Callable[[dict[str, Any]], None]
) -> Iterator[None]:
    """While the block runs, a copy into ``bucket`` sends ``on_created`` its event (from another thread)."""

    def copy_object(
        backend: S3Backend, src_key: Any, dest_bucket_name: str, dest_key_name: str, *args: Any, **kwargs: Any
    ) -> Any:
        copied = _original_copy_object(backend, src_key, dest_bucket_name, dest_key_name, *args, **kwargs)
        if dest_bucket_name == bucket:
            event = object_created_event(
                bucket=bucket,
                key=dest_key_name,
                size=int(src_key.size),
                etag=str(src_key.etag).strip('"'),
                region=region,
                account=account,
                source_ip="127.0.0.1",
                at=clock.now(),
            )
            event["detail"]["reason"] = "CopyObject"
            threading.Thread(target=on_created, args=(event,), daemon=True).start()
        return copied

    with mock.patch.object(S3Backend, "copy_object", copy_object):
        yield
