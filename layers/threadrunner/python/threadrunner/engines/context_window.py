"""What of a thread's history fits the model's context: the newest messages, within a token budget.

Tokens are counted approximately, four characters of the message's JSON to a token (no tokenizer: it
would be one per model family, and a few percent off does not matter against a budget with headroom).
"""

from __future__ import annotations

import json
import math
from typing import Any

Message = dict[str, Any]


def approx_tokens(message: Message) -> int:
    return math.ceil(len(json.dumps(message, ensure_ascii=False)) / 4)


def fit(required: list[Message], earlier: list[Message], budget: int) -> list[Message]:
    """``required`` (instructions, the run's own messages) always; then as many of ``earlier`` (oldest
    first) as fit, taken from the newest end. Returns the earlier ones kept, oldest first."""
    left = budget - sum(approx_tokens(message) for message in required)
    kept: list[Message] = []
    for message in reversed(earlier):
        cost = approx_tokens(message)
        if cost > left:
            break
        kept.append(message)
        left -= cost
    kept.reverse()
    # A history that starts with the model's answer reads oddly: start at a user message.
    while kept and kept[0].get("role") != "user":
        kept.pop(0)
    return kept
