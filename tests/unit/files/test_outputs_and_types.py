"""Content sniffing for staging, and the pieces of Collect outputs: the chunk stream upload_fileobj reads and
the names generated files get in S3."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import BinaryIO

import pytest
from threadrunner import clock
from threadrunner.engines.base import GeneratedFile
from threadrunner.files.outputs import ChunkStream, copy_outputs
from threadrunner.files.types import content_type_of, mismatch
from threadrunner.models.records import RunRecord


@pytest.mark.parametrize(
    ("content_type", "head", "problem"),
    [
        ("text/csv", "région,total\n".encode(), None),
        ("text/csv", "é".encode()[:1], None),  # a sample cut inside a character is still text
        ("text/csv", b"a\x00b", "binary"),
        ("application/json", b"\xff\xfe{", "not UTF-8"),
        ("image/png", b"\x89PNG\r\n\x1a\nrest", None),
        ("image/png", b"\xff\xd8\xff\xe0", "not image/png"),
        ("application/pdf", b"%PDF-1.7", None),
        ("application/x-msdownload", b"MZ", "cannot be checked"),
    ],
)
def test_the_first_bytes_must_match_the_declared_type(
    content_type: str, head: bytes, problem: str | None
) -> None:
    found = mismatch(content_type, head)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_generated_files_get_their_content_type_from_their_name() -> None:
    assert [content_type_of(name) for name in ("chart.png", "summary.csv", "blob")] == [
        "image/png",
        "text/csv",
        "application/octet-stream",
    ]


def test_a_chunk_stream_reads_every_byte_in_order_whatever_the_read_size() -> None:
    chunks = [b"abc", b"", b"defgh", b"i"]
    stream = io.BufferedReader(ChunkStream(iter(chunks)), buffer_size=2)
    assert b"".join(iter(lambda: stream.read(4), b"")) == b"abcdefghi"


class _Upstream:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    @contextmanager
    def download(self, file: GeneratedFile) -> Iterator[Iterator[bytes]]:
        data = self.files[file.file_id]
        yield iter([data[i : i + 3] for i in range(0, len(data), 3)])  # in chunks, never whole

    def upload_file(self, filename: str, stream: BinaryIO, content_type: str, expires_seconds: int) -> str:
        raise NotImplementedError

    def delete_file(self, upstream_file_id: str) -> None:
        raise NotImplementedError


class _Blobs:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}

    def upload(self, key: str, stream: BinaryIO, content_type: str) -> None:
        self.objects[key] = (stream.read(), content_type)


def test_generated_files_are_copied_under_the_run_with_safe_unique_names() -> None:
    now = clock.now()
    run = RunRecord(
        id="run_1",
        thread_id="thr_1",
        user_id="alice",
        assistant="a",
        engine="assistants",
        model="m",
        message="q",
        created_at=now,
        deadline_at=now + timedelta(minutes=1),
    )
    generated = [
        GeneratedFile(name="/mnt/data/chart.png", file_id="f1", container_id="c1"),
        GeneratedFile(name="chart.png", file_id="f2", container_id="c1"),
        GeneratedFile(name="../../évil name.csv", file_id="f3"),
    ]
    upstream = _Upstream({"f1": b"\x89PNG-one", "f2": b"\x89PNG-two", "f3": b"a,b\n"})
    blobs = _Blobs()
    outputs = copy_outputs(run, generated, upstream, blobs)  # type: ignore[arg-type]
    assert [o.key for o in outputs] == [
        "outputs/thr_1/run_1/chart.png",
        "outputs/thr_1/run_1/chart-2.png",
        "outputs/thr_1/run_1/vil_name.csv",
    ]
    assert [o.size_bytes for o in outputs] == [len(upstream.files[f]) for f in ("f1", "f2", "f3")]
    assert blobs.objects["outputs/thr_1/run_1/chart-2.png"] == (b"\x89PNG-two", "image/png")
    # container files expire with their container; Files API copies are deleted with the thread
    assert [o.upstream_file_id for o in outputs] == [None, None, "f3"]
