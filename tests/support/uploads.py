"""Uploads as a client makes them on the local stack: declare the file, POST it with its presigned POST, wait
for staging; and what the emulator received."""

from __future__ import annotations

import time
from typing import Any

import httpx

from local.emulator import EmulatorServer

SALES_CSV = b"region,orders,total\nNorth,7,1234.5\nSouth,2,99\nWest,5,640.25\nEast,1,10\n"


def declare_file(
    client: httpx.Client, thread_id: str, data: bytes, *, content_type: str = "text/csv", **fields: Any
) -> httpx.Response:
    body = {
        "thread_id": thread_id,
        "filename": "sales.csv",
        "content_type": content_type,
        "size_bytes": len(data),
        "purpose": "code_interpreter",
        **fields,
    }
    return client.post("/v1/files", json=body)


def post_upload(declared: dict[str, Any], data: bytes, content_type: str = "text/csv") -> httpx.Response:
    """What a browser does with the presigned POST: every field, then the file."""
    upload = declared["upload"]
    return httpx.post(upload["url"], data=upload["fields"], files={"file": ("sales.csv", data, content_type)})


def wait_until_settled(client: httpx.Client, file_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        file = client.get(f"/v1/files/{file_id}").json()
        if file["status"] != "pending":
            return dict(file)
        assert time.monotonic() < deadline, f"file {file_id} still pending after {timeout} s"
        time.sleep(0.05)


def staged_file(client: httpx.Client, thread_id: str, data: bytes = SALES_CSV) -> dict[str, Any]:
    declared = declare_file(client, thread_id, data)
    assert declared.status_code == 201, declared.text
    assert declared.json()["status"] == "pending"
    assert post_upload(declared.json(), data).status_code == 204
    return wait_until_settled(client, declared.json()["id"])


def upstream_uploads(upstream: EmulatorServer) -> list[Any]:
    return [e for e in upstream.exchanges if e.method == "POST" and e.path == "/v1/files" and e.status == 200]
