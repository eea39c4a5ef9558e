"""Files end to end, as a client sees them: a presigned POST to the local S3 endpoint with an HTTP client,
staging on the ObjectCreated event, a run that uses the file, the code interpreter's chart and summary
downloaded through presigned GETs; refusals, limits, staging failures, retries and cleanup (replays of a
presigned POST: test_file_replays.py).

Every exchange with the emulator is checked against the OpenAI OpenAPI description (``upstream``)."""

from __future__ import annotations

import csv
import io
import struct
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from local.emulator import EmulatorServer, Plan
from local.emulator.analysis import analyse_csv
from local.s3_endpoint import object_created_event
from local.stack import LocalStack
from tests.e2e.conftest import new_thread, wait_for_run
from tests.support.lifecycle import leftovers
from tests.support.uploads import (
    SALES_CSV,
    declare_file,
    post_upload,
    staged_file,
    upstream_uploads,
    wait_until_settled,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ENGINES = ["responses", "assistants"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, configure: Callable[..., None]) -> str:
    configure(THREADRUNNER_ENGINE=request.param)
    return str(request.param)


def _png_width(data: bytes) -> int:
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    crc = struct.unpack(">I", data[16 + length : 20 + length])[0]
    assert kind == b"IHDR" and zlib.crc32(data[12 : 16 + length]) == crc
    return int(struct.unpack(">I", data[16:20])[0])


def test_an_uploaded_csv_is_analysed_and_the_chart_and_summary_download_through_presigned_urls(
    alice: httpx.Client, upstream: EmulatorServer, engine: str
) -> None:
    # Given a CSV uploaded with an HTTP client through the presigned POST, and staged
    thread = new_thread(alice, f"analysis-{engine}")
    file = staged_file(alice, thread["id"])
    assert file["status"] == "ready", file
    assert len(upstream_uploads(upstream)) == 1
    # When the assistant runs with it and the code interpreter analyses it
    upstream.script(Plan.analyse_csv())
    accepted = alice.post(
        f"/v1/threads/{thread['id']}/runs",
        json={"message": "Chart orders by region", "file_ids": [file["id"]]},
    )
    assert accepted.status_code == 202, accepted.text
    run = wait_for_run(alice, accepted.json()["id"])
    # Then the run lists both generated files, and their presigned URLs serve their bytes
    assert run["status"] == "completed", run
    assert run["file_ids"] == [file["id"]]
    outputs = {output["name"].rsplit(".", 1)[1]: output for output in run["files"]}
    assert sorted(outputs) == ["csv", "png"]
    downloads = {kind: httpx.get(output["url"]) for kind, output in outputs.items()}
    assert {kind: d.status_code for kind, d in downloads.items()} == {"csv": 200, "png": 200}
    chart, summary = downloads["png"].content, downloads["csv"].content
    assert _png_width(chart) == 4 * 8  # a real PNG: one 8-pixel bar per CSV row
    expected = analyse_csv(SALES_CSV)  # exactly what the upstream's code interpreter wrote
    assert (chart, summary) == (expected.chart, expected.summary)
    rows = {row["column"]: row for row in csv.DictReader(io.StringIO(summary.decode()))}
    assert float(rows["total"]["sum"]) == pytest.approx(1234.5 + 99 + 640.25 + 10)
    assert outputs["png"]["content_type"] == "image/png" and outputs["csv"]["content_type"] == "text/csv"
    assert [outputs["png"]["size_bytes"], outputs["csv"]["size_bytes"]] == [len(chart), len(summary)]


def test_a_file_whose_bytes_are_not_its_declared_type_fails_staging(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    thread = new_thread(alice, "wrong-type")
    png_bytes = PNG_SIGNATURE + b"\x00" * 40
    file = staged_file(alice, thread["id"], png_bytes)  # declared text/csv, uploaded as such
    assert file["status"] == "failed" and "binary" in file["reason"]
    assert upstream_uploads(upstream) == []  # nothing went upstream
    run = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "go", "file_ids": [file["id"]]})
    assert run.status_code == 422 and run.json()["field"] == "file_ids.0"
    s3 = local_stack.client("s3")
    for prefix in ("uploads/alice/", "staged/alice/"):  # neither the upload nor a copy of it is kept
        objects = s3.list_objects_v2(Bucket=local_stack.bucket, Prefix=prefix)
        assert [o["Key"] for o in objects.get("Contents", []) if file["id"] in o["Key"]] == [], prefix


def test_an_upload_over_its_declared_size_is_refused_by_s3_and_the_file_stays_pending(
    alice: httpx.Client, upstream: EmulatorServer
) -> None:
    thread = new_thread(alice, "too-big")
    declared = declare_file(alice, thread["id"], SALES_CSV).json()
    refused = post_upload(declared, SALES_CSV + b"Extra,1,1\n")
    assert refused.status_code == 400 and "EntityTooLarge" in refused.text
    assert alice.get(f"/v1/files/{declared['id']}").json()["status"] == "pending"
    run = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "go", "file_ids": [declared["id"]]})
    assert run.status_code == 409 and run.json()["field"] == "file_ids.0"  # pending: not ready yet


def test_someone_elses_file_is_not_found_everywhere(
    alice: httpx.Client, client_for: Callable[[str], httpx.Client], upstream: EmulatorServer
) -> None:
    file = staged_file(alice, new_thread(alice, "mine")["id"])
    mallory = client_for("mallory")
    missing_id = "file_00000000000000000000000000"
    missing = mallory.get(f"/v1/files/{missing_id}")
    theirs = mallory.get(f"/v1/files/{file['id']}")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.text.replace(file["id"], missing_id) == missing.text  # nothing tells them apart
    assert file["id"] not in str(mallory.get("/v1/files").json())
    alices_thread = alice.get(f"/v1/files/{file['id']}").json()["thread_id"]
    assert (
        declare_file(mallory, alices_thread, SALES_CSV).status_code == 404
    )  # nor can they upload to her thread
    thread = new_thread(mallory, "theirs")
    run = mallory.post(f"/v1/threads/{thread['id']}/runs", json={"message": "go", "file_ids": [file["id"]]})
    other = mallory.post(f"/v1/threads/{thread['id']}/runs", json={"message": "go", "file_ids": [missing_id]})
    assert run.status_code == other.status_code == 404
    assert run.text.replace(file["id"], missing_id) == other.text
    assert mallory.delete(f"/v1/files/{file['id']}").status_code == 204  # nothing of theirs to delete
    assert alice.get(f"/v1/files/{file['id']}").json()["status"] == "ready"


def test_an_upstream_that_refuses_the_upload_fails_the_file_with_its_reason(
    alice: httpx.Client, upstream: EmulatorServer
) -> None:
    upstream.script(Plan.http_error(400, "invalid_file", on="upload", message="File type not supported."))
    file = staged_file(alice, new_thread(alice, "refused")["id"])
    assert file["status"] == "failed" and "File type not supported" in file["reason"]


def test_a_repeated_object_created_event_makes_one_upstream_file(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    file = staged_file(alice, new_thread(alice, "twice")["id"])
    key = f"uploads/alice/{file['id']}"
    event = object_created_event(
        bucket=local_stack.bucket,
        key=key,
        size=len(SALES_CSV),
        etag="x",
        region=local_stack.region,
        account=local_stack.account,
        source_ip="127.0.0.1",
        at=datetime.now(UTC),
    )
    again = local_stack.lambdas.invoke(local_stack.lambdas.function_name("stage_file"), event)
    assert again.error is None and again.payload == {"files": {key: "ready"}}
    assert len(upstream_uploads(upstream)) == 1


@pytest.mark.parametrize(
    ("settings", "change", "field", "code"),
    [
        ({"THREADRUNNER_ALLOWED_FILE_TYPES": '["application/pdf"]'}, {}, "content_type", "invalid_request"),
        ({"THREADRUNNER_MAX_FILE_BYTES": "10"}, {}, "size_bytes", "invalid_request"),
        ({"THREADRUNNER_USER_QUOTA_BYTES": "10"}, {}, "size_bytes", "quota_exceeded"),
        ({}, {"filename": "../etc/passwd"}, "filename", "invalid_request"),
    ],
)
def test_each_file_limit_is_a_4xx_naming_the_field_and_nothing_is_created(
    alice: httpx.Client,
    upstream: EmulatorServer,
    configure: Callable[..., None],
    settings: dict[str, str],
    change: dict[str, Any],
    field: str,
    code: str,
) -> None:
    thread = new_thread(alice, "limits")
    before = alice.get("/v1/files").json()["files"]
    configure(**settings)
    refused = declare_file(alice, thread["id"], SALES_CSV, **change)
    assert refused.status_code == 422, refused.text
    assert (refused.json()["field"], refused.json()["code"]) == (field, code)
    assert alice.get("/v1/files").json()["files"] == before


def test_a_run_takes_at_most_the_files_per_run_limit(
    alice: httpx.Client, upstream: EmulatorServer, configure: Callable[..., None]
) -> None:
    thread = new_thread(alice, "per-run")
    files = [staged_file(alice, thread["id"])["id"] for _ in range(2)]
    configure(THREADRUNNER_MAX_FILES_PER_RUN="1")
    refused = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "go", "file_ids": files})
    assert refused.status_code == 422 and refused.json()["field"] == "file_ids"


def test_files_and_outputs_go_with_their_thread_and_a_deleted_file_goes_at_once(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    thread = new_thread(alice, "cleanup")
    kept, dropped = (staged_file(alice, thread["id"]) for _ in range(2))
    upstream.script(Plan.analyse_csv())
    run = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "chart", "file_ids": [kept["id"]]})
    assert wait_for_run(alice, run.json()["id"])["status"] == "completed"
    # A file deleted on its own goes upstream, in S3 and here; deleting it again is fine
    assert alice.delete(f"/v1/files/{dropped['id']}").status_code == 202
    assert alice.get(f"/v1/files/{dropped['id']}").status_code == 404
    assert alice.delete(f"/v1/files/{dropped['id']}").status_code == 204
    # The thread's deletion takes its files, uploads and generated outputs with it
    assert alice.delete(f"/v1/threads/{thread['id']}").status_code == 202
    assert alice.get(f"/v1/files/{kept['id']}").status_code == 404
    deleted = {
        e.path.rsplit("/", 1)[1] for e in upstream.exchanges if e.method == "DELETE" and "/files/" in e.path
    }
    uploaded = {e.response_json["id"] for e in upstream_uploads(upstream)}
    assert uploaded and uploaded <= deleted
    ids = {thread["id"], run.json()["id"], kept["id"], dropped["id"]}
    left = leftovers(
        local_stack.client("dynamodb"),
        local_stack.client("s3"),
        local_stack.bucket,
        local_stack.table_names,
        "nobody",
        ids,
    )
    assert left == []


def test_deleting_a_users_data_takes_their_files_upstream_and_in_s3(
    client_for: Callable[[str], httpx.Client], upstream: EmulatorServer, local_stack: LocalStack
) -> None:
    gina = client_for("gina")
    file = staged_file(gina, new_thread(gina, "data")["id"])
    assert gina.delete("/v1/users/me/data").status_code == 202
    assert gina.get("/v1/files").json()["files"] == []
    uploaded = upstream_uploads(upstream)[0].response_json["id"]
    assert any(e.method == "DELETE" and e.path == f"/v1/files/{uploaded}" for e in upstream.exchanges)
    left = leftovers(
        local_stack.client("dynamodb"),
        local_stack.client("s3"),
        local_stack.bucket,
        local_stack.table_names,
        "gina",
        {file["id"]},
    )
    assert left == []


def test_the_sweep_removes_a_file_whose_deletion_was_never_handed_over(
    alice: httpx.Client, upstream: EmulatorServer, local_stack: LocalStack, configure: Callable[..., None]
) -> None:
    file = staged_file(alice, new_thread(alice, "orphan")["id"])
    configure(THREADRUNNER_DELETE_THREADS_FUNCTION="")  # the hand-over is lost: the file is only hidden
    assert alice.delete(f"/v1/files/{file['id']}").status_code == 202
    assert alice.get(f"/v1/files/{file['id']}").status_code == 404
    assert not any(e.method == "DELETE" for e in upstream.exchanges)
    report = local_stack.sweep()
    assert report.error is None and report.payload["orphaned_files"] >= 1
    uploaded = upstream_uploads(upstream)[0].response_json["id"]
    assert [e.path for e in upstream.exchanges if e.method == "DELETE"] == [f"/v1/files/{uploaded}"]
    for prefix in ("uploads", "staged"):
        objects = local_stack.client("s3").list_objects_v2(
            Bucket=local_stack.bucket, Prefix=f"{prefix}/alice/{file['id']}"
        )
        assert "Contents" not in objects, prefix


def test_on_the_chat_engine_an_uploaded_csv_is_inlined_into_the_message_the_model_reads(
    alice: httpx.Client, upstream: EmulatorServer, configure: Callable[..., None]
) -> None:
    # Given a chat thread and a CSV uploaded through the presigned POST (chat stages nothing upstream)
    configure(THREADRUNNER_ENGINE="chat")
    thread = new_thread(alice, "chat-csv")
    file = staged_file(alice, thread["id"])
    assert file["status"] == "ready" and upstream_uploads(upstream) == []
    # When the assistant runs with it
    upstream.script(Plan.message("East sold least."))
    accepted = alice.post(
        f"/v1/threads/{thread['id']}/runs",
        json={"message": "Which region sold least?", "file_ids": [file["id"]]},
    )
    assert accepted.status_code == 202, accepted.text
    run = wait_for_run(alice, accepted.json()["id"])
    # Then the chat completion the upstream received carries the CSV's text under a header naming it
    assert (run["status"], run["answer"]) == ("completed", "East sold least."), run
    inlined = (
        "Which region sold least?\n\n----- file sales.csv (text/csv) -----\n"
        f"{SALES_CSV.decode().rstrip()}\n----- end of sales.csv -----"
    )
    (create,) = [e for e in upstream.exchanges if e.method == "POST" and e.path == "/v1/chat/completions"]
    assert [m["content"] for m in create.request_json["messages"] if m["role"] == "user"] == [inlined]
    # and the thread's log shows that message as the run's user message (what later runs replay)
    messages = alice.get(f"/v1/threads/{thread['id']}/messages").json()["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", inlined),
        ("assistant", "East sold least."),
    ]


@pytest.mark.parametrize(
    ("settings", "content_type", "data", "reason"),
    [
        ({}, "application/pdf", b"%PDF-1.7 brief", "reads only text files"),
        (
            {"THREADRUNNER_CHAT_INLINE_BYTES": "20"},
            "text/csv",
            SALES_CSV,
            "past the 20 the chat engine inlines",
        ),
    ],
    ids=["not text", "over the inline limit"],
)
def test_on_the_chat_engine_a_file_it_cannot_inline_is_a_422_naming_it_and_no_run_starts(
    alice: httpx.Client,
    upstream: EmulatorServer,
    configure: Callable[..., None],
    settings: dict[str, str],
    content_type: str,
    data: bytes,
    reason: str,
) -> None:
    # Given a chat thread with a ready file the chat engine cannot inline
    configure(THREADRUNNER_ENGINE="chat", **settings)
    thread = new_thread(alice, f"chat-refused-{content_type.replace('/', '-')}")
    declared = declare_file(alice, thread["id"], data, content_type=content_type)
    assert post_upload(declared.json(), data, content_type).status_code == 204
    assert wait_until_settled(alice, declared.json()["id"])["status"] == "ready"
    # When a run is posted with it
    refused = alice.post(
        f"/v1/threads/{thread['id']}/runs", json={"message": "go", "file_ids": [declared.json()["id"]]}
    )
    # Then 422 names the file and why, and nothing was created: no message, the thread free
    assert refused.status_code == 422, refused.text
    assert (refused.json()["field"], refused.json()["code"]) == ("file_ids.0", "file_not_inlinable")
    assert reason in refused.json()["message"]
    assert alice.get(f"/v1/threads/{thread['id']}/messages").json()["messages"] == []
    assert alice.get(f"/v1/threads/{thread['id']}").json()["active_run_id"] is None
    assert [e for e in upstream.exchanges if e.path == "/v1/chat/completions"] == []
