"""Facade ids and threadrunner's: the same objects under the Assistants API's prefixes.

A thread ``thr_X`` is ``thread_X``; a run keeps its id (``run_X``); a message of the log ``run_X.0001`` is
``msg_X_0001``, and a user message waiting for the next run has an id of its own (``msg_Y``). An id that
cannot be one of ours is simply not found (the same 404 as another user's).
"""

from __future__ import annotations

import re

from threadrunner.compat.errors import CompatError, not_found

_ID = r"[0-9a-hjkmnp-tv-z]{26}"  # clock.new_id's suffix (Crockford base32, lower case)
_THREAD = re.compile(rf"thread_({_ID})")
_RUN = re.compile(rf"run_{_ID}")
_LOG_MESSAGE = re.compile(rf"msg_({_ID})_(\d{{4}})")
_PENDING_MESSAGE = re.compile(rf"msg_{_ID}")


def thread_out(thread_id: str) -> str:
    return "thread_" + thread_id.removeprefix("thr_")


def thread_in(facade_id: str, param: str | None = None) -> str:
    found = _THREAD.fullmatch(facade_id)
    if found is None:
        raise not_found("thread", facade_id, param)
    return "thr_" + found.group(1)


def run_in(facade_id: str, param: str | None = None) -> str:
    if _RUN.fullmatch(facade_id) is None:
        raise not_found("run", facade_id, param)
    return facade_id


def message_out(message_id: str) -> str:
    """A log message id (``<run id>.<nnnn>``) as the facade shows it; a pending one is already facade-shaped."""
    if message_id.startswith("msg_"):
        return message_id
    run_id, _, number = message_id.partition(".")
    return f"msg_{run_id.removeprefix('run_')}_{number}"


def message_in(facade_id: str) -> str:
    """A facade message id as the log knows it: ``run_X.nnnn``, or a pending message's own id."""
    found = _LOG_MESSAGE.fullmatch(facade_id)
    if found is not None:
        return f"run_{found.group(1)}.{found.group(2)}"
    if _PENDING_MESSAGE.fullmatch(facade_id) is not None:
        return facade_id
    raise not_found("message", facade_id)


__all__ = ["CompatError", "message_in", "message_out", "run_in", "thread_in", "thread_out"]
