"""A presigned POST stays valid for its 15 minutes: replayed after staging with other bytes, it must not
change the staged file (the S3 copy, what went upstream, what the chat engine inlines)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import new_thread, wait_for_run
from tests.support.uploads import SALES_CSV, declare_file, post_upload, upstream_uploads, wait_until_settled

REPLAYED_CSV = b"region,orders,total\nMoon,1,1\n"  # fits the POST's size condition


def _wait_until_gone(local_stack: LocalStack, key: str, timeout: float = 15) -> None:
    """Until staging has handled what was posted to ``key`` (it deletes every upload it has handled)."""
    s3 = local_stack.client("s3")
    deadline = time.monotonic() + timeout
    while "Contents" in s3.list_objects_v2(Bucket=local_stack.bucket, Prefix=key):
        assert time.monotonic() < deadline, f"{key} still there after {timeout} s: staging never handled it"
        time.sleep(0.05)


@pytest.mark.parametrize("thread_engine", ["responses", "chat"])
def test_a_presigned_post_replayed_after_staging_does_not_change_the_file(
    alice: httpx.Client,
    upstream: EmulatorServer,
    local_stack: LocalStack,
    configure: Callable[..., None],
    thread_engine: str,
) -> None:
    # Given a CSV uploaded through its presigned POST and staged
    configure(THREADRUNNER_ENGINE=thread_engine)
    thread = new_thread(alice, f"replay-{thread_engine}")
    declared = declare_file(alice, thread["id"], SALES_CSV).json()
    assert post_upload(declared, SALES_CSV).status_code == 204
    assert wait_until_settled(alice, declared["id"])["status"] == "ready"
    # When the same POST is sent again within its expiry, with other bytes
    assert len(REPLAYED_CSV) <= len(SALES_CSV)
    assert post_upload(declared, REPLAYED_CSV).status_code == 204
    _wait_until_gone(local_stack, f"uploads/alice/{declared['id']}")
    # Then the file is ready with the bytes it was staged with: in S3, upstream, and inlined by chat
    assert alice.get(f"/v1/files/{declared['id']}").json()["status"] == "ready"
    staged = local_stack.client("s3").get_object(
        Bucket=local_stack.bucket, Key=f"staged/alice/{declared['id']}"
    )
    assert staged["Body"].read() == SALES_CSV
    if thread_engine == "responses":
        assert len(upstream_uploads(upstream)) == 1  # nothing staged again
        return
    upstream.script(Plan.message("Read."))
    accepted = alice.post(
        f"/v1/threads/{thread['id']}/runs", json={"message": "Read it", "file_ids": [declared["id"]]}
    )
    assert wait_for_run(alice, accepted.json()["id"])["status"] == "completed"
    (create,) = [e for e in upstream.exchanges if e.method == "POST" and e.path == "/v1/chat/completions"]
    (user,) = [m["content"] for m in create.request_json["messages"] if m["role"] == "user"]
    assert SALES_CSV.decode().rstrip() in user and "Moon" not in user
