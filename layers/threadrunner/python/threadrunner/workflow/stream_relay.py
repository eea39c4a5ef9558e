"""Streaming the model's words: a run created with ``"stream": true`` logs its answer's chunks as ``message.delta``
events (``{"round", "text"}``) as the model writes them; joined, they are the run's answer.

- ``chat`` answers within Start run and Submit tool outputs: :func:`streaming` gives those steps the engine
  streaming its completion, each chunk logged as it comes (keyed ``delta#<run>#<round>#<chunk index>``).
- ``responses`` runs its model calls upstream, in background responses created streamed: Check run relays
  each one's stream (:func:`relay`) for as long as it would have polled (``check_wait_seconds``, the Lambda's
  time), and at least :data:`CATCH_UP_SECONDS`, so a later Check run still brings the words so far. The
  last relayed ``sequence_number`` is kept on the run (``stream_cursor``): the next Check run, after a hand-off
  to a Wait, reads on with ``starting_after``. Each event's key is its first chunk's place in the stream
  (``delta#<response>#<sequence_number>``), so a retried Check run logs nothing twice; and since a step may die
  between logging an event and saving the cursor, the relay first takes the cursor from the log when that is
  ahead (``through``, the event's last sequence number).

Chunks that come within :data:`GROUP_SECONDS` of the last event logged join the next one: a model writes tens of
chunks a second, and each event is a DynamoDB transaction. Events are for watching a run: an upstream error
while relaying is logged and the run goes on (Check run polls as usual).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from threadrunner.engines.base import Engine, StreamEvent, StreamIdle
from threadrunner.errors import UpstreamError
from threadrunner.models.records import RunRecord, StreamCursor
from threadrunner.models.run_events import RunEventType
from threadrunner.workflow.context import StepContext

logger = logging.getLogger(__name__)

GROUP_SECONDS = 0.1
# Check run relays at least this long, even past check_wait_seconds: the words written since the last look.
CATCH_UP_SECONDS = 1.0
# A stream silent this long is opened again (after a look at the run for a cancel).
IDLE_SECONDS = 5.0
# How many of the run's last events the relay looks through for its own latest one.
_RECENT_EVENTS = 20


@contextmanager
def streaming(engine: Engine, run: RunRecord, ctx: StepContext) -> Iterator[Engine]:
    """The engine a step creates the run's model call with: streaming, when the run streams and the engine
    can; chunks that an answer in the call brings (chat) are logged, the last ones when the block ends."""
    streams = getattr(engine, "streaming", None)
    if not run.stream or streams is None:
        yield engine
        return
    batch = _Batch(
        lambda first, text: _log(run, ctx, first[0], key=f"delta#{run.id}#{first[0]}#{first[1]}", text=text)
    )
    try:
        yield streams(lambda round_number, index, text: batch.add((round_number, index), text))
    finally:
        batch.flush()


def relay(run: RunRecord, ctx: StepContext, *, seconds: float, final: bool) -> RunRecord:
    """Relay the current response's stream into the event log for ``seconds`` (at least CATCH_UP_SECONDS; to
    its end when ``final``, the response having ended), or until it ends; the run with its cursor."""
    stream_output: Callable[..., Iterator[StreamEvent]] | None = getattr(
        ctx.engine(run.engine), "stream_output", None
    )
    response_id = run.current_response_id
    if not run.stream or stream_output is None or response_id is None:
        return run
    cursor = run.stream_cursor
    if cursor is None or cursor.response_id != response_id:
        cursor = StreamCursor(response_id=response_id)
    if cursor.ended:
        return run
    cursor = _ahead_in_log(run, cursor, ctx)
    until = time.monotonic() + max(seconds, CATCH_UP_SECONDS, IDLE_SECONDS if final else 0)
    saved = cursor.model_copy()
    batch = _Batch(
        lambda first, text: _log(
            run, ctx, run.round, key=f"delta#{response_id}#{first}", text=text, through=last
        )
    )
    last = cursor.after

    def save() -> None:
        nonlocal saved
        batch.flush()
        if cursor != saved:
            ctx.runs.update(run.id, stream_cursor=cursor)
            saved = cursor.model_copy()

    try:
        while not cursor.ended and (left := until - time.monotonic()) > 0:
            try:
                for event in stream_output(run, cursor.after, timeout=min(left, IDLE_SECONDS)):
                    if event.delta:
                        last = event.sequence_number
                        batch.add(event.sequence_number, event.delta)
                    cursor.after, cursor.ended = event.sequence_number, event.ended
                    if batch.logged or event.ended:
                        save()
                    if event.ended or time.monotonic() >= until:
                        break
                else:
                    break  # closed without an end (cancelled): Check run polls as usual
            except StreamIdle:
                if ctx.runs.get(run.id).cancel_requested:
                    break
    except UpstreamError as error:
        logger.warning("run %s: the stream of %s was not relayed: %s", run.id, response_id, error)
    finally:
        save()
    return run.model_copy(update={"stream_cursor": cursor})


class _Batch:
    """Chunks joined into one event until GROUP_SECONDS have passed since the last event was logged."""

    def __init__(self, log: Callable[[Any, str], None]) -> None:
        self._log = log
        self._first: Any = None
        self._texts: list[str] = []
        self._last_logged = time.monotonic()
        self.logged = False  # the last add logged an event

    def add(self, place: Any, text: str) -> None:
        if not self._texts:
            self._first = place
        self._texts.append(text)
        self.logged = time.monotonic() - self._last_logged >= GROUP_SECONDS
        if self.logged:
            self.flush()

    def flush(self) -> None:
        if self._texts:
            self._log(self._first, "".join(self._texts))
            self._texts = []
            self._last_logged = time.monotonic()


def _log(
    run: RunRecord, ctx: StepContext, round_number: int, *, key: str, text: str, through: int | None = None
) -> None:
    data: dict[str, Any] = {"round": round_number, "text": text}
    if through is not None:
        data["through"] = through
    ctx.runs.events.log(run, RunEventType.message_delta, data, key=key)


def _ahead_in_log(run: RunRecord, cursor: StreamCursor, ctx: StepContext) -> StreamCursor:
    """The cursor, moved past what the log holds already: a step that died between logging an event and
    saving the cursor relayed up to the event's ``through``."""
    last_seq = ctx.runs.events.last_seq(run.id)
    recent = ctx.runs.events.after(run.id, max(last_seq - _RECENT_EVENTS, 0), limit=_RECENT_EVENTS)
    for event in reversed(recent):
        through = event.data.get("through")
        if (
            event.type is RunEventType.message_delta
            and event.data.get("round") == run.round
            and through is not None
        ):
            if cursor.after is None or through > cursor.after:
                return cursor.model_copy(update={"after": int(through)})
            break
    return cursor
