"""Documents an assistant knows: ``knowledge: [docs/handbook.md, s3://bucket/key.pdf]`` in its YAML.

Each entry is a path in the repository (relative to the folder that holds ``assistants/``), or an S3 object
(``s3://bucket/key``). threadrunner/knowledge_sync.py puts them in the engine's retrieval store (an upstream
vector store per assistant and environment) at deploy time (``threadrunner knowledge sync --env ENV``) and
at the local stack's start; the Responses engine searches it with the ``file_search`` tool.

What can be checked without the upstream is checked where the definitions are (synth, local start,
``threadrunner assistants validate``): the form of each entry, its type, a repository file's existence and
size, how many there are, and that the assistant's engine has a retrieval store (``chat`` has none). An S3
object's size is checked when it is synced.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

# What file_search reads (the upstream's supported types), by extension: the content type it is sent as.
DOCUMENT_TYPES: dict[str, str] = {
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".pdf": "application/pdf",
    ".json": "application/json",
    ".html": "text/html",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".doc": "application/msword",
    ".tex": "text/x-tex",
}
# The upstream's limit per file (the Files API takes up to 512 MB).
MAX_DOCUMENT_BYTES = 512 * 1024 * 1024
# Per assistant: each document is uploaded and indexed once per sync, one by one, at deploy time.
MAX_DOCUMENTS = 100
# Engines with a retrieval store (an upstream vector store); chat has none.
RETRIEVAL_ENGINES = ("responses", "assistants")
S3_SCHEME = "s3://"


def is_s3(source: str) -> bool:
    return source.startswith(S3_SCHEME)


def split_s3(source: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    bucket, _, key = source.removeprefix(S3_SCHEME).partition("/")
    return bucket, key


def document_filename(source: str) -> str:
    return posixpath.basename(split_s3(source)[1] if is_s3(source) else source)


def content_type_for(source: str) -> str:
    return DOCUMENT_TYPES[posixpath.splitext(source)[1].lower()]


def _checked_source(source: str) -> str:
    if is_s3(source):
        bucket, key = split_s3(source)
        if not bucket or not key or key.endswith("/"):
            raise ValueError(f"{source!r} is not an S3 object (s3://bucket/key)")
    elif source.startswith("/") or "\\" in source or ".." in source.split("/") or not source.strip():
        raise ValueError(f"{source!r}: a repository path is relative and stays inside the repository")
    extension = posixpath.splitext(source)[1].lower()
    if extension not in DOCUMENT_TYPES:
        kind = extension or "files without an extension"
        raise ValueError(
            f"{document_filename(source) or source!r}: file_search cannot read {kind} "
            f"(supported: {', '.join(sorted(DOCUMENT_TYPES))})"
        )
    return source


def _checked_list(sources: list[str]) -> list[str]:
    if len(sources) > MAX_DOCUMENTS:
        raise ValueError(f"{len(sources)} documents: at most {MAX_DOCUMENTS} per assistant")
    seen: set[str] = set()
    for source in sources:
        if source in seen:
            raise ValueError(f"{source!r} is listed twice")
        seen.add(source)
    return sources


DocumentSource = Annotated[str, AfterValidator(_checked_source)]
KnowledgeList = Annotated[list[DocumentSource], AfterValidator(_checked_list)]


def documents_root(assistants_dir: Path) -> Path:
    """Where repository paths start: the folder that holds ``assistants/`` (the repository)."""
    return assistants_dir.resolve().parent


def knowledge_problems(
    knowledge: list[str], engine: str | None, *, root: Path | None, default_engine: str | None
) -> list[tuple[tuple[int | str, ...], str]]:
    """What is wrong with an assistant's documents beyond their form, as (key path, message): a repository
    file that is missing, empty or too large (with ``root``), or an engine without a retrieval store (the
    assistant's own, else ``default_engine`` when given)."""
    problems: list[tuple[tuple[int | str, ...], str]] = []
    if not knowledge:
        return problems
    effective = engine or default_engine
    if effective is not None and effective not in RETRIEVAL_ENGINES:
        where = ("engine",) if engine else ("knowledge",)
        problems.append(
            (
                where,
                f"the {effective} engine has no retrieval store for knowledge documents "
                f"(use {' or '.join(RETRIEVAL_ENGINES)})",
            )
        )
    if root is None:
        return problems
    for index, source in enumerate(knowledge):
        if is_s3(source):
            continue  # checked when synced
        reason = _file_problem(root / source)
        if reason is not None:
            problems.append((("knowledge", index), f"{source}: {reason}"))
    return problems


def _file_problem(path: Path) -> str | None:
    try:
        size = path.stat().st_size
    except OSError:
        return "no such file in the repository"
    if not path.is_file():
        return "not a file"
    return size_problem(size)


def size_problem(size: int) -> str | None:
    if size == 0:
        return "the document is empty"
    if size > MAX_DOCUMENT_BYTES:
        return f"{size} bytes, more than the {MAX_DOCUMENT_BYTES} the upstream takes per file"
    return None
