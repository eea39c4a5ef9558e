"""Time and identifiers, in one place so tests can reason about them."""

from __future__ import annotations

import math
import os
import time
from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def retry_after(moment: datetime, since: datetime) -> int:
    """Whole seconds from ``since`` until ``moment``, rounded up and at least 1: a Retry-After that never
    sends a client back early."""
    return max(1, math.ceil((moment - since).total_seconds()))


def new_id(prefix: str) -> str:
    """A time-sortable id (48-bit milliseconds + 80 random bits, like a ULID), e.g. ``thr_01jd...``.

    Sorting by id sorts by creation time, which is how threads are listed newest first.
    """
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(reversed(chars))}"


def id_time(identifier: str) -> datetime | None:
    """When ``new_id`` made ``identifier`` (to the millisecond); None for an id it did not make."""
    _, separator, encoded = identifier.rpartition("_")
    if not separator or len(encoded) != 26 or any(char not in _ALPHABET for char in encoded):
        return None
    value = 0
    for char in encoded:
        value = value * 32 + _ALPHABET.index(char)
    return datetime.fromtimestamp((value >> 80) / 1000, UTC)
