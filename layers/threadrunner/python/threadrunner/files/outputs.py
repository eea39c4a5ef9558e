"""Collect outputs' part for files: copy what the model generated from the upstream to S3, before the
upstream container expires (about 20 minutes idle), streaming each file through in chunks."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

from threadrunner.engines.base import FileEngine, GeneratedFile
from threadrunner.files.types import content_type_of
from threadrunner.models.records import OutputFile, RunRecord
from threadrunner.stores.blobs import BlobStore

OUTPUTS_PREFIX = "outputs/"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def outputs_prefix(thread_id: str) -> str:
    return f"{OUTPUTS_PREFIX}{thread_id}/"


def copy_outputs(
    run: RunRecord, generated: list[GeneratedFile], engine: FileEngine, blobs: BlobStore
) -> list[OutputFile]:
    """Each file to ``outputs/<thread>/<run>/<name>``. Names and keys depend only on what the upstream
    reports, so a retried step writes the same objects again and records the same list."""
    taken: set[str] = set()
    outputs = []
    for file in generated:
        name = _unique(_safe_name(file), taken)
        key = f"{outputs_prefix(run.thread_id)}{run.id}/{name}"
        content_type = content_type_of(name)
        with engine.download(file) as chunks:
            stream = ChunkStream(chunks)
            blobs.upload(key, io.BufferedReader(stream), content_type)
        outputs.append(
            OutputFile(
                name=name,
                key=key,
                size_bytes=stream.size,
                content_type=content_type,
                upstream_file_id=file.file_id if file.container_id is None else None,
            )
        )
    return outputs


class ChunkStream(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (what upload_fileobj wants), counting the bytes."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        self.size += count
        return count


def _safe_name(file: GeneratedFile) -> str:
    """The file's base name, with anything that is awkward in a key or a download replaced."""
    base = file.name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", base).strip("._")
    return name[:120] or file.file_id


def _unique(name: str, taken: set[str]) -> str:
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{stem}-{number}{dot}{suffix}"
    taken.add(candidate)
    return candidate
