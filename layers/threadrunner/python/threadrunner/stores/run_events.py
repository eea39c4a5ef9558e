"""A run's event log: runs table, the run's partition, ``sk = event#<seq, 10 digits>`` (the event, with
``user_id`` and ``thread`` for the fan-out) and ``eventkey#<key>`` (which step already wrote what: a retried
step writes each event once).

Appending reads the last ``seq`` and writes ``seq + 1`` together with the event's key, in one transaction whose
conditions say that neither exists yet: two steps appending at once (Run tools' parallel calls) cannot take the
same ``seq`` (the loser reads again and takes the next), and a step that runs twice cannot log its event twice
(the key exists: the repeat is dropped). So ``seq`` runs 1, 2, 3, ... with no gap and no duplicate, and a reader
resuming after ``seq`` N misses nothing. The events go with the run (RunStore.delete empties its partition);
``expires_at`` (TTL) removes them anyway once the thread would have expired.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from threadrunner import clock
from threadrunner.models.records import ToolCallRecord
from threadrunner.models.run_events import RunEvent, RunEventType
from threadrunner.stores._dynamo import (
    WRITE_RETRY,
    WriteRetry,
    cancellation_reasons,
    from_item,
    is_condition_failure,
    to_item,
    write_if,
)
from threadrunner.stores.conditions import Key

logger = logging.getLogger(__name__)

EVENT_PREFIX = "event#"
KEY_PREFIX = "eventkey#"
_SEQ_DIGITS = 10
# Appends that lose the race for a seq to another append read again; a run's steps never come close.
_MAX_RACES = 20
# Events per transaction of log_many: two items each, and the run's check (DynamoDB takes 100 items).
_BATCH = 40


def event_sk(seq: int) -> str:
    return f"{EVENT_PREFIX}{seq:0{_SEQ_DIGITS}d}"


@dataclass(frozen=True)
class RunRef:
    """Whose run the event is about (kept on each event item: the fan-out routes by it)."""

    run_id: str
    user_id: str
    thread_id: str


class RunLike(Protocol):
    """A run record (threadrunner.models.records.RunRecord): whose run it is."""

    id: str
    user_id: str
    thread_id: str


class RunEventStore:
    def __init__(
        self, table: Any, *, ttl_seconds: int = 30 * 24 * 3600, retry: WriteRetry = WRITE_RETRY
    ) -> None:
        self._table = table
        self._ttl_seconds = ttl_seconds
        self._retry = retry

    def append(
        self, run: RunRef, event_type: RunEventType, data: dict[str, Any] | None = None, *, key: str
    ) -> RunEvent | None:
        """Log one event, once per ``key`` (unique within the run, e.g. ``tool_call.created#call_1``); the
        event, or None when that key was logged already (a retried step)."""
        for _ in range(_MAX_RACES):
            event = RunEvent(
                seq=self.last_seq(run.run_id) + 1,
                type=event_type,
                created_at=clock.now(),
                data=data or {},
            )
            try:
                self._retry.write(
                    self._table.meta.client.transact_write_items,
                    TransactItems=[*self._puts(run, event, key), self._run_exists(run)],
                )
            except ClientError as error:
                if not is_condition_failure(error):
                    raise
                reasons = cancellation_reasons(error)
                if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
                    return None  # the run is gone: nobody watches it any more
                if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                    return None  # this key is logged already
                continue  # another append took this seq: read again
            return event
        raise RuntimeError(f"run {run.run_id}: could not append {event_type} after {_MAX_RACES} races")

    def log(
        self,
        run: RunLike | str,
        event_type: RunEventType,
        data: dict[str, Any] | None = None,
        *,
        key: str,
    ) -> RunEvent | None:
        """What the steps and the API call: :meth:`append` for ``run`` (a record, or its id: its owner is read
        once), and an AWS error is logged, never raised. Events are for watching a run: none ever fails it."""
        try:
            ref = self._ref(run)
            if ref is None:
                return None  # the run is gone (deleted meanwhile): nobody watches it any more
            return self.append(ref, event_type, data, key=key)
        except (ClientError, RuntimeError) as error:
            logger.warning(
                "run event not logged", extra={"event": str(event_type), "key": key, "error": str(error)}
            )
            return None

    def tool_call_completed(self, call: ToolCallRecord) -> None:
        """tool_call.completed, with sizes and times only (the output stays in the ledger); logged once per
        call whoever answered it (its tool, a refusal, a crash, the application, a denial)."""
        self.log(
            call.run_id,
            RunEventType.tool_call_completed,
            {
                "id": call.call_id,
                "name": call.name,
                "output_chars": len(call.output or ""),
                "duration_ms": call.duration_ms,
                "is_error": call.is_error,
            },
            key=f"tool_call.completed#{call.call_id}",
        )

    def _ref(self, run: RunLike | str) -> RunRef | None:
        if not isinstance(run, str):
            return RunRef(run_id=run.id, user_id=run.user_id, thread_id=run.thread_id)
        owner = _owner(self._table, run)
        return None if owner is None else RunRef(run_id=run, user_id=owner[0], thread_id=owner[1])

    def log_many(self, run: RunLike, events: list[tuple[RunEventType, dict[str, Any], str]]) -> None:
        """Several events of one step, in order (a round's tool calls): each chunk shares one read of the last
        seq and one transaction; a chunk that meets a logged key, a race or a gone run is logged one event at
        a time (:meth:`log`). Best effort, as :meth:`log`."""
        ref = RunRef(run_id=run.id, user_id=run.user_id, thread_id=run.thread_id)
        for start in range(0, len(events), _BATCH):
            chunk = events[start : start + _BATCH]
            try:
                first = self.last_seq(ref.run_id) + 1
                puts = [
                    put
                    for offset, (event_type, data, key) in enumerate(chunk)
                    for put in self._puts(
                        ref,
                        RunEvent(seq=first + offset, type=event_type, created_at=clock.now(), data=data),
                        key,
                    )
                ]
                written = write_if(
                    self._table.meta.client.transact_write_items,
                    retry=self._retry,
                    TransactItems=[*puts, self._run_exists(ref)],
                )
            except ClientError as error:
                logger.warning("run events not logged together", extra={"error": str(error)})
                written = None
            if written is None:
                for event_type, data, key in chunk:
                    self.log(run, event_type, data, key=key)

    def _puts(self, run: RunRef, event: RunEvent, key: str) -> list[dict[str, Any]]:
        """The event and its key's marker, each written only if not there yet."""
        # ``thread``, not ``thread_id``: the by_thread index (thread_id, created_at) lists runs only.
        item = to_item(
            event, run_id=run.run_id, sk=event_sk(event.seq), user_id=run.user_id, thread=run.thread_id
        )
        item["expires_at"] = int(time.time()) + self._ttl_seconds
        marker = {"run_id": run.run_id, "sk": f"{KEY_PREFIX}{key}", "seq": event.seq}
        return [{"Put": self._new(item)}, {"Put": self._new(marker)}]

    def _run_exists(self, run: RunRef) -> dict[str, Any]:
        """Never into a deleted run's partition (its thread's cleanup raced the step)."""
        return {
            "ConditionCheck": {
                "TableName": self._table.name,
                "Key": {"run_id": run.run_id, "sk": "run"},
                "ConditionExpression": "attribute_exists(run_id)",
            }
        }

    def _new(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "TableName": self._table.name,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(sk)",
        }

    def last_seq(self, run_id: str) -> int:
        answer = self._table.query(
            KeyConditionExpression=Key("run_id").eq(run_id) & Key("sk").begins_with(EVENT_PREFIX),
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
            ProjectionExpression="seq",
        )
        items = answer.get("Items", [])
        return int(items[0]["seq"]) if items else 0

    def ended(self, run_id: str) -> bool:
        """Whether the run's last event (run.completed, ...) is logged: nothing comes after it."""
        answer = self._table.query(
            KeyConditionExpression=Key("run_id").eq(run_id) & Key("sk").begins_with(EVENT_PREFIX),
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
            ProjectionExpression="#type",
            ExpressionAttributeNames={"#type": "type"},
        )
        items = answer.get("Items", [])
        return bool(items) and RunEventType(items[0]["type"]).ends_run

    def after(self, run_id: str, after: int = 0, *, limit: int = 100) -> list[RunEvent]:
        """The events after ``seq`` ``after``, oldest first, at most ``limit``."""
        answer = self._table.query(
            KeyConditionExpression=Key("run_id").eq(run_id)
            & Key("sk").between(event_sk(after + 1), event_sk(10**_SEQ_DIGITS - 1)),
            ConsistentRead=True,
            Limit=limit,
        )
        return [from_item(RunEvent, item) for item in answer.get("Items", [])]


_OWNERS: dict[tuple[str, str], tuple[str, str]] = {}
_MAX_OWNERS = 1024


def _owner(table: Any, run_id: str) -> tuple[str, str] | None:
    """Whose run ``run_id`` is (user, thread): it never changes, so a container reads it once."""
    known = _OWNERS.get((table.name, run_id))
    if known is not None:
        return known
    item = table.get_item(Key={"run_id": run_id, "sk": "run"}, ProjectionExpression="user_id, thread_id").get(
        "Item"
    )
    if item is None:
        return None
    if len(_OWNERS) >= _MAX_OWNERS:
        _OWNERS.clear()
    _OWNERS[(table.name, run_id)] = owner = (str(item["user_id"]), str(item["thread_id"]))
    return owner
