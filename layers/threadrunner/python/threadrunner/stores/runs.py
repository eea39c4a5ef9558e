"""Runs: the ``run`` item of a run's partition (its tool-call ledger, ``call#<call_id>`` items of the same
partition, is stores/tool_call_ledger.py; its event log, stores/run_events.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from threadrunner.errors import NotFoundError, UpstreamOutcomeUnknown
from threadrunner.models.records import (
    TERMINAL_STATUSES,
    ActionType,
    RunPlace,
    RunRecord,
    RunStatus,
    Usage,
)
from threadrunner.models.run_events import RunEventType
from threadrunner.stores._dynamo import (
    WRITE_RETRY,
    TransactItem,
    WriteRetry,
    every_item,
    from_item,
    is_condition_failure,
    to_item,
    to_value,
    write_if,
)
from threadrunner.stores.conditions import Attr, Key
from threadrunner.stores.run_events import RunEventStore
from threadrunner.stores.tables import ACTIVE_RUNS_INDEX

RUN_SK = "run"
ENDING_EVENT = {
    RunStatus.completed: RunEventType.run_completed,
    RunStatus.failed: RunEventType.run_failed,
    RunStatus.cancelled: RunEventType.run_cancelled,
    RunStatus.timed_out: RunEventType.run_timed_out,
}
# Passes over a deleted run's partition (stores/runs.py RunStore.delete): the second finds late writes, if any.
_DELETE_SWEEPS = 3
# The sparse index of runs not yet ended (the operators' kill switch): set at create, removed at the end.
ACTIVE = "active"


def run_not_found(run_id: str) -> NotFoundError:
    return NotFoundError(f"run {run_id} not found")


def _thread_runs(thread_id: str) -> dict[str, Any]:
    """A Query of the thread's runs on the sparse ``by_thread`` index (created_at ascending). Only run items:
    other items of a run's partition may carry thread_id and created_at too."""
    return {
        "IndexName": "by_thread",
        "KeyConditionExpression": Key("thread_id").eq(thread_id),
        "FilterExpression": Attr("sk").eq(RUN_SK),
    }


class RunStore:
    def __init__(self, table: Any, *, retry: WriteRetry = WRITE_RETRY) -> None:
        self._table = table
        self._retry = retry
        # The run's event log lives in its partition too (stores/run_events.py); a run's end is logged here.
        self.events = RunEventStore(table, retry=retry)

    def create(self, run: RunRecord) -> None:
        put = self.new_run(run)
        del put["TableName"]
        self._retry.write(self._table.put_item, **put)

    def new_run(self, run: RunRecord) -> TransactItem:
        """The ``Put`` that creates the run (its own write, or an item of the transaction that gives it its
        thread's lock: services.runs)."""
        return {
            "TableName": self._table.name,
            "Item": to_item(run, run_id=run.id, sk=RUN_SK, active=ACTIVE),
            "ConditionExpression": "attribute_not_exists(run_id)",
        }

    def get(self, run_id: str) -> RunRecord:
        run = self.find(run_id)
        if run is None:
            raise run_not_found(run_id)
        return run

    def find(self, run_id: str) -> RunRecord | None:
        """The run, or None when there is none (never created, or deleted with its thread or user)."""
        item = self._table.get_item(Key={"run_id": run_id, "sk": RUN_SK}, ConsistentRead=True).get("Item")
        return None if item is None else from_item(RunRecord, item)

    def place(self, run_id: str) -> RunPlace:
        """The run's thread and assistant only. NotFoundError: no such run."""
        item = self._table.get_item(
            Key={"run_id": run_id, "sk": RUN_SK},
            ConsistentRead=True,
            ProjectionExpression="#thread, #user, #assistant",
            ExpressionAttributeNames={"#thread": "thread_id", "#user": "user_id", "#assistant": "assistant"},
        ).get("Item")
        if item is None:
            raise run_not_found(run_id)
        return from_item(RunPlace, item)

    def get_for_user(self, run_id: str, user_id: str) -> RunRecord:
        run = self.get(run_id)
        if run.user_id != user_id:
            raise NotFoundError(f"run {run_id} not found")
        return run

    def update(self, run_id: str, **fields: Any) -> None:
        """Set top-level fields (None removes them). NotFoundError: the run is gone (deleted).

        A new ``status`` never replaces a final one: a step still running when the reconciler (or a
        cancel) ended the run leaves it ended, and its write is dropped."""
        sets = {k: v for k, v in fields.items() if v is not None}
        removes = [k for k, v in fields.items() if v is None]
        expression = ""
        if sets:
            expression += "SET " + ", ".join(f"#{k} = :{k}" for k in sets)
        if removes:
            expression += " REMOVE " + ", ".join(f"#{k}" for k in removes)
        arguments: dict[str, Any] = {
            "Key": {"run_id": run_id, "sk": RUN_SK},
            "UpdateExpression": expression.strip(),
            "ConditionExpression": "attribute_exists(run_id)",
            "ExpressionAttributeNames": {f"#{k}": k for k in fields},
        }
        if sets:
            arguments["ExpressionAttributeValues"] = {f":{k}": to_value(v) for k, v in sets.items()}
        if "status" in sets:
            terminal = {f":ended{i}": status.value for i, status in enumerate(TERMINAL_STATUSES)}
            arguments["ConditionExpression"] += f" AND NOT #status IN ({', '.join(terminal)})"
            arguments["ExpressionAttributeValues"].update(terminal)
        if write_if(self._table.update_item, retry=self._retry, **arguments) is None:
            if "status" in sets and self.find(run_id) is not None:
                return  # it had ended: it stays as it ended
            raise run_not_found(run_id)

    def finish(self, run_id: str, *, also: Sequence[dict[str, Any]] = (), **fields: Any) -> bool:
        """Set the final status once; False when the run had already ended (a re-executed Finish run).

        ``also``: updates of other items (the user's usage counters) made in the same transaction, so they
        happen exactly when the run ends, never twice."""
        terminal = [status.value for status in TERMINAL_STATUSES]
        names = {f"#{k}": k for k in fields} | {"#status": "status"}
        values = {f":{k}": to_value(v) for k, v in fields.items()} | {
            f":t{i}": status for i, status in enumerate(terminal)
        }
        update = {
            "Key": {"run_id": run_id, "sk": RUN_SK},
            "UpdateExpression": "SET " + ", ".join(f"#{k} = :{k}" for k in fields) + f" REMOVE {ACTIVE}",
            "ConditionExpression": "attribute_exists(run_id) AND NOT #status IN ("
            + ", ".join(f":t{i}" for i in range(len(terminal)))
            + ")",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if not also:
            written = write_if(self._table.update_item, retry=self._retry, **update)
        else:
            written = write_if(
                self._table.meta.client.transact_write_items,
                retry=self._retry,
                TransactItems=[
                    {"Update": {"TableName": self._table.name, **update}},
                    *({"Update": other} for other in also),
                ],
            )
        if written is None:
            return False
        self._log_end(run_id, fields)
        return True

    def _log_end(self, run_id: str, fields: dict[str, Any]) -> None:
        """The run's last event: run.completed, run.failed (with the error's code), run.cancelled or
        run.timed_out. Logged once whoever ends the run (Finish run, the API, the reconciler)."""
        status = RunStatus(fields["status"])
        error = fields.get("error")
        data = {"error": {"code": error.code, "message": error.message}} if error is not None else {}
        self.events.log(run_id, ENDING_EVENT[status], data, key="run.ended")

    def list_active(
        self, *, limit: int, after: dict[str, Any] | None = None, user_id: str | None = None
    ) -> tuple[list[RunRecord], dict[str, Any] | None]:
        """Runs not yet ended, oldest first, all users (or one); returns a page and the key to go on from."""
        arguments: dict[str, Any] = {
            "IndexName": ACTIVE_RUNS_INDEX,
            "KeyConditionExpression": Key(ACTIVE).eq(ACTIVE),
            "Limit": limit,
        }
        if user_id is not None:
            arguments["FilterExpression"] = Attr("user_id").eq(user_id)
        if after:
            arguments["ExclusiveStartKey"] = after
        runs: list[RunRecord] = []
        while True:  # a filtered page may come back short: read on until it is full or the index ends
            response = self._table.query(**arguments)
            runs.extend(from_item(RunRecord, item) for item in response["Items"])
            next_key = response.get("LastEvaluatedKey")
            if next_key is None or len(runs) >= limit:  # never more: each query evaluates what is left
                return runs, next_key
            arguments["ExclusiveStartKey"] = next_key
            arguments["Limit"] = limit - len(runs)

    # Exactly-once upstream creates: claim the round, call, record the id; look before creating again.
    def claim_round(self, run_id: str, round_number: int) -> bool:
        """Claim round n before creating its upstream response. False: an earlier attempt claimed it and
        was interrupted after its create call returned (a crash before the id was recorded), so the caller
        must look upstream before creating. A claim whose create call may still land upstream (timed out,
        connection lost), or any other state, refuses rather than risk running the model twice."""
        try:
            self._table.update_item(
                Key={"run_id": run_id, "sk": RUN_SK},
                UpdateExpression="SET pending_round = :n",
                ConditionExpression="attribute_not_exists(pending_round) AND size(response_ids) = :n",
                ExpressionAttributeValues={":n": round_number},
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            run = self.get(run_id)
            if run.pending_round == round_number and not run.pending_round_unknown:
                return False
            raise UpstreamOutcomeUnknown(
                f"round {round_number} of run {run_id} was already attempted and its outcome is unknown"
            ) from error
        return True

    def mark_round_unknown(self, run_id: str, round_number: int) -> None:
        """The create call of the claimed round got no answer: it may still land upstream."""
        self._table.update_item(
            Key={"run_id": run_id, "sk": RUN_SK},
            UpdateExpression="SET pending_round_unknown = :yes",
            ConditionExpression="pending_round = :n",
            ExpressionAttributeValues={":n": round_number, ":yes": True},
        )

    def release_round(self, run_id: str, round_number: int) -> None:
        """The create call was answered with an error: nothing was created, the round may be tried again."""
        self._table.update_item(
            Key={"run_id": run_id, "sk": RUN_SK},
            UpdateExpression="REMOVE pending_round, pending_round_unknown",
            ConditionExpression="pending_round = :n",
            ExpressionAttributeValues={":n": round_number},
        )

    def record_round(self, run_id: str, round_number: int, response_id: str, started_at: datetime) -> None:
        self._table.update_item(
            Key={"run_id": run_id, "sk": RUN_SK},
            UpdateExpression="SET response_ids = list_append(response_ids, :id), round_started_at = :t "
            "REMOVE pending_round, pending_round_unknown",
            ConditionExpression="pending_round = :n",
            ExpressionAttributeValues={":n": round_number, ":id": [response_id], ":t": to_value(started_at)},
        )

    def reopen_round(self, run_id: str, round_number: int, response_id: str) -> bool:
        """Forget the last round's response (cancelled: it never started) so the round is created again.
        False when that is done already (a re-executed step)."""
        reopened = write_if(
            self._table.update_item,
            retry=self._retry,
            Key={"run_id": run_id, "sk": RUN_SK},
            UpdateExpression=f"REMOVE response_ids[{round_number}]",
            ConditionExpression=f"size(response_ids) = :size AND response_ids[{round_number}] = :id",
            ExpressionAttributeValues={":size": round_number + 1, ":id": response_id},
        )
        return reopened is not None

    def record_usage(self, run_id: str, response_id: str, usage: Usage) -> None:
        """Usage per upstream response, so a re-polled response is never counted twice."""
        recorded = write_if(
            self._table.update_item,
            retry=self._retry,
            Key={"run_id": run_id, "sk": RUN_SK},
            UpdateExpression="SET usage_by_response.#rid = :u",
            ConditionExpression="attribute_exists(run_id)",
            ExpressionAttributeNames={"#rid": response_id},
            ExpressionAttributeValues={":u": to_value(usage)},
        )
        if recorded is None:
            raise run_not_found(run_id)

    def list_for_thread(self, thread_id: str) -> list[RunRecord]:
        arguments = _thread_runs(thread_id)
        return [from_item(RunRecord, item) for item in every_item(self._table.query, **arguments)]

    def page_for_thread(
        self, thread_id: str, *, limit: int, after: str | None = None
    ) -> tuple[list[RunRecord], bool]:
        """Up to ``limit`` of the thread's runs, newest first, after run ``after``, and whether more follow.
        NotFoundError: ``after`` is no run of the thread (the index's position needs its created_at)."""
        arguments = _thread_runs(thread_id) | {"ScanIndexForward": False, "Limit": limit + 1}
        if after:
            position = self._table.get_item(
                Key={"run_id": after, "sk": RUN_SK},
                ProjectionExpression="thread_id, created_at",
                ConsistentRead=True,
            ).get("Item")
            if position is None or position.get("thread_id") != thread_id:
                raise NotFoundError(f"run {after} (after) is not a run of thread {thread_id}")
            arguments["ExclusiveStartKey"] = {**position, "run_id": after, "sk": RUN_SK}
        items: list[dict[str, Any]] = []
        while True:  # one more than asked tells whether there is a next page; a filtered read may come short
            response = self._table.query(**arguments)
            items.extend(response["Items"])
            next_key = response.get("LastEvaluatedKey")
            if next_key is None or len(items) > limit:
                break
            arguments["ExclusiveStartKey"] = next_key
            arguments["Limit"] = limit + 1 - len(items)
        return [from_item(RunRecord, item) for item in items[:limit]], len(items) > limit

    def request_cancel(self, run_id: str) -> bool:
        """Flag a started run for Check run to cancel; False when it has already ended."""
        terminal = [status.value for status in TERMINAL_STATUSES]
        flagged = write_if(
            self._table.update_item,
            retry=self._retry,
            Key={"run_id": run_id, "sk": RUN_SK},
            UpdateExpression="SET cancel_requested = :yes",
            ConditionExpression="attribute_exists(run_id) AND NOT #status IN ("
            + ", ".join(f":t{i}" for i in range(len(terminal)))
            + ")",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":yes": True} | {f":t{i}": s for i, s in enumerate(terminal)},
        )
        return flagged is not None

    def store_action_token(self, run_id: str, round_number: int, token: str) -> bool:
        """Wait for the application: keep its task token on the run's required action. False when the
        application answered first (the caller then hands the token back itself)."""
        stored = write_if(
            self._table.update_item,
            retry=self._retry,
            Key={"run_id": run_id, "sk": RUN_SK},
            UpdateExpression="SET required_action.task_token = :token",
            ConditionExpression="attribute_exists(required_action) AND required_action.#round = :round "
            "AND attribute_not_exists(required_action.answered_at)",
            ExpressionAttributeNames={"#round": "round"},
            ExpressionAttributeValues={":token": token, ":round": round_number},
        )
        return stored is not None

    def answer_action(
        self, run_id: str, round_number: int, *, by: str, digest: str, answered_at: datetime
    ) -> RunRecord | None:
        """Mark the required action answered, once, and the run in progress again: the run as it now is
        (its token, if the wait stored one, is for the caller to send), or None when it was answered
        already or no longer waits."""
        written = write_if(
            self._table.update_item,
            retry=self._retry,
            Key={"run_id": run_id, "sk": RUN_SK},
            UpdateExpression="SET required_action.answered_at = :at, required_action.answered_by = :by, "
            "required_action.answer_digest = :digest, #status = :in_progress",
            ConditionExpression="attribute_exists(required_action) AND required_action.#round = :round "
            "AND attribute_not_exists(required_action.answered_at) AND #status = :waiting",
            ExpressionAttributeNames={"#round": "round", "#status": "status"},
            ExpressionAttributeValues={
                ":at": to_value(answered_at),
                ":by": by,
                ":digest": digest,
                ":round": round_number,
                ":in_progress": "in_progress",
                ":waiting": "requires_action",
            },
            ReturnValues="ALL_NEW",
        )
        return None if written is None else from_item(RunRecord, written["Attributes"])

    def advance_action(
        self, run_id: str, round_number: int, *, call_ids: list[str], approvals_digest: str
    ) -> bool:
        """Approvals decided, the same wait goes on to the round's client tools: the action becomes
        submit_tool_outputs for ``call_ids`` in one conditional write that keeps the task token and the
        expiry (Wait for the application may be storing the token at this moment). False when the approvals
        were answered already or the run no longer waits."""
        written = write_if(
            self._table.update_item,
            retry=self._retry,
            Key={"run_id": run_id, "sk": RUN_SK},
            UpdateExpression="SET required_action.#type = :outputs, required_action.call_ids = :ids, "
            "required_action.approvals_digest = :digest",
            ConditionExpression="attribute_exists(required_action) AND required_action.#round = :round "
            "AND required_action.#type = :approvals AND attribute_not_exists(required_action.answered_at) "
            "AND #status = :waiting",
            ExpressionAttributeNames={"#round": "round", "#type": "type", "#status": "status"},
            ExpressionAttributeValues={
                ":outputs": ActionType.submit_tool_outputs.value,
                ":approvals": ActionType.approve_tool_calls.value,
                ":ids": call_ids,
                ":digest": approvals_digest,
                ":round": round_number,
                ":waiting": "requires_action",
            },
        )
        return written is not None

    def delete(self, run_id: str) -> None:
        """The run and every item of its partition (ledger, events). The run item goes first: an event is
        logged only while it exists (stores/run_events.py), so a step still running (Finish run logging the
        ending) either wrote before it went, and the sweep that follows finds its event, or writes nothing.
        The sweep is repeated until it finds nothing, for the writes that were in flight."""
        self._table.delete_item(Key={"run_id": run_id, "sk": RUN_SK})
        arguments: dict[str, Any] = {
            "KeyConditionExpression": Key("run_id").eq(run_id),
            "ProjectionExpression": "run_id, sk",
            "ConsistentRead": True,
        }
        for _ in range(_DELETE_SWEEPS):
            items = list(every_item(self._table.query, **arguments))
            if not items:
                return
            with self._table.batch_writer() as batch:
                for item in items:
                    batch.delete_item(Key={"run_id": item["run_id"], "sk": item["sk"]})
