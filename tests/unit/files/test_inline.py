"""Files on the chat engine: which files may be inlined, and the user content they make."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from threadrunner.engines.base import RunFile
from threadrunner.errors import FileNotInlinable
from threadrunner.files.inline import check_inlinable, inline
from threadrunner.models.records import FilePurpose, FileRecord, FileStatus

SALES_CSV = "region,total\nNorth,1234.5\nSüd,99\n".encode()


class _Blobs:
    """The BlobStore calls inlining makes, over a dict (None: the object is gone)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.reads: list[tuple[str, int]] = []

    def find_head(self, key: str, head_bytes: int) -> tuple[int, bytes] | None:
        self.reads.append((key, head_bytes))
        data = self.objects.get(key)
        return None if data is None else (len(data), data[:head_bytes])


def run_file(name: str, content_type: str = "text/csv") -> RunFile:
    return RunFile(
        file_id=f"file_{name}",
        upstream_file_id=None,
        filename=name,
        content_type=content_type,
        purpose="input",
        key=f"uploads/alice/file_{name}",
    )


def record(name: str, size: int, content_type: str = "text/csv") -> FileRecord:
    return FileRecord(
        id=f"file_{name}",
        user_id="alice",
        thread_id="thr_1",
        engine="chat",
        filename=name,
        content_type=content_type,
        size_bytes=size,
        purpose=FilePurpose.input,
        status=FileStatus.ready,
        created_at=datetime(2026, 11, 30, tzinfo=UTC),
    )


def test_each_file_follows_the_message_under_a_header_naming_it() -> None:
    # Given a CSV and a Markdown file in S3
    blobs = _Blobs({"uploads/alice/file_sales.csv": SALES_CSV, "uploads/alice/file_notes.md": b"# Notes\n"})
    files = [run_file("sales.csv"), run_file("notes.md", "text/markdown")]

    # When they are inlined
    content = inline("Sum the totals", files, blobs, limit_bytes=1000)  # type: ignore[arg-type]

    # Then the message comes first, then each file's text between its header and its end line
    assert content == (
        "Sum the totals\n\n"
        "----- file sales.csv (text/csv) -----\n"
        "region,total\nNorth,1234.5\nSüd,99\n"
        "----- end of sales.csv -----\n\n"
        "----- file notes.md (text/markdown) -----\n"
        "# Notes\n"
        "----- end of notes.md -----"
    )
    # and each read asked for no more than what was left of the limit, plus one byte
    assert blobs.reads == [
        ("uploads/alice/file_sales.csv", 1001),
        ("uploads/alice/file_notes.md", 1001 - len(SALES_CSV)),
    ]


def test_a_run_without_files_is_just_its_message() -> None:
    assert inline("hello", [], _Blobs({}), limit_bytes=10) == "hello"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("objects", "files", "field", "reason"),
    [
        (
            {"uploads/alice/file_a.pdf": b"%PDF-1.7"},
            [run_file("a.pdf", "application/pdf")],
            "file_ids.0",
            "it is application/pdf, and the chat engine reads only text files",
        ),
        (
            {"uploads/alice/file_a.csv": b"a\n" * 30, "uploads/alice/file_b.csv": b"b\n" * 30},
            [run_file("a.csv"), run_file("b.csv")],
            "file_ids.1",
            "the run's files come to 120 bytes with it, past the 100 the chat engine inlines",
        ),
        (
            {"uploads/alice/file_a.csv": b"ok\n", "uploads/alice/file_b.csv": b"caf\xe9\n"},
            [run_file("a.csv"), run_file("b.csv")],
            "file_ids.1",
            "it is not UTF-8 text (byte 3)",
        ),
        (
            {},
            [run_file("a.csv")],
            "file_ids.0",
            "its upload is no longer stored",
        ),
    ],
    ids=["not text", "past the limit", "not UTF-8", "upload gone"],
)
def test_a_file_that_cannot_be_inlined_is_named_with_the_reason(
    objects: dict[str, bytes], files: list[RunFile], field: str, reason: str
) -> None:
    with pytest.raises(FileNotInlinable) as refused:
        inline("look", files, _Blobs(objects), limit_bytes=100)  # type: ignore[arg-type]

    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: file {files[int(field[-1])].file_id} (")
    assert reason in str(refused.value)


def test_the_api_check_takes_text_files_within_the_limit_by_their_declared_sizes() -> None:
    # Given text files that add up to exactly the limit: fine
    check_inlinable([record("a.csv", 60), record("b.json", 40, "application/json")], limit_bytes=100)

    # When one byte more is declared, the file that crosses the limit is named
    with pytest.raises(FileNotInlinable) as too_large:
        check_inlinable([record("a.csv", 60), record("b.csv", 41)], limit_bytes=100)
    assert too_large.value.field == "file_ids.1"
    assert "101 bytes" in str(too_large.value)

    # and an image is never text, whatever its size
    with pytest.raises(FileNotInlinable) as image:
        check_inlinable([record("a.csv", 1), record("chart.png", 1, "image/png")], limit_bytes=100)
    assert image.value.field == "file_ids.1"
    assert "image/png" in str(image.value)
