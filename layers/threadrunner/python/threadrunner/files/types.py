"""Is a file what it claims to be? Its first bytes against the declared content type."""

from __future__ import annotations

import codecs
import mimetypes

SNIFF_BYTES = 4096
TEXT_TYPES = frozenset({"text/csv", "text/plain", "text/markdown", "application/json"})
# Binary formats by their magic numbers (file signatures).
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    # Office Open XML documents are zip archives.
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (b"PK\x03\x04",),
}
KNOWN_TYPES = TEXT_TYPES | frozenset(_MAGIC)


def mismatch(content_type: str, head: bytes) -> str | None:
    """Why ``head`` (the first bytes of a file) is not of ``content_type``; None when it is."""
    if content_type in TEXT_TYPES:
        if b"\x00" in head:
            return f"the file is binary, not {content_type}"
        try:
            # Not final: the sample may end inside a multi-byte character.
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            return f"the file is not UTF-8 text, as {content_type} must be"
        return None
    signatures = _MAGIC.get(content_type)
    if signatures is None:
        return f"{content_type} cannot be checked"
    if not head.startswith(signatures):
        return f"the file's content is not {content_type}"
    return None


def content_type_of(name: str) -> str:
    """For files the model generated (upstreams serve them as octet-stream): by their name."""
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"
