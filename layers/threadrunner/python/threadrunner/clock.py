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
