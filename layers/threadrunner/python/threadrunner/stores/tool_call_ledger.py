"""The tool-call ledger: every tool call of a run, its arguments and its output, as ``call#<call_id>`` items
of the run's partition in the runs table (beside the ``run`` item of stores/runs.py)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from threadrunner.errors import NotFoundError
from threadrunner.models.records import ToolCallRecord
from threadrunner.stores._dynamo import from_item, is_condition_failure, to_item, to_value, write_if
from threadrunner.stores.conditions import Key


class ToolCallLedger:
    """Every tool call, its arguments and its output: a retried step reuses what is here."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def add(self, call: ToolCallRecord) -> None:
        """Record a requested call once (a re-polled response asks for the same calls)."""
        write_if(
            self._table.put_item,
            Item=to_item(call, sk=f"call#{call.call_id}"),
            ConditionExpression="attribute_not_exists(sk)",
        )

    def get(self, run_id: str, call_id: str) -> ToolCallRecord:
        item = self._table.get_item(Key={"run_id": run_id, "sk": f"call#{call_id}"}, ConsistentRead=True).get(
            "Item"
        )
        if item is None:
            raise NotFoundError(f"tool call {call_id} of run {run_id} not found")
        return from_item(ToolCallRecord, item)

    def list(self, run_id: str) -> list[ToolCallRecord]:
        response = self._table.query(
            KeyConditionExpression=Key("run_id").eq(run_id) & Key("sk").begins_with("call#"),
            ConsistentRead=True,
        )
        return [from_item(ToolCallRecord, item) for item in response["Items"]]

    def start_attempt(self, run_id: str, call_id: str, started_at: str) -> int:
        response = self._table.update_item(
            Key={"run_id": run_id, "sk": f"call#{call_id}"},
            UpdateExpression="SET started_at = :s ADD attempts :one",
            ConditionExpression="attribute_exists(sk)",
            ExpressionAttributeValues={":s": started_at, ":one": 1},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["attempts"])

    def decide(self, run_id: str, call_id: str, approval: Any) -> None:
        """Record a person's decision on a call that needs approval (before its tool may run)."""
        self._table.update_item(
            Key={"run_id": run_id, "sk": f"call#{call_id}"},
            UpdateExpression="SET approval = :a",
            ConditionExpression="attribute_exists(sk)",
            ExpressionAttributeValues={":a": to_value(approval)},
        )

    def save_output(self, call: ToolCallRecord) -> ToolCallRecord:
        """Store the output once; if another attempt stored one first, that one wins."""
        try:
            self._table.update_item(
                Key={"run_id": call.run_id, "sk": f"call#{call.call_id}"},
                UpdateExpression="SET #o = :o, is_error = :e, truncated = :t, finished_at = :f, duration_ms = :d"
                + (", full_output_key = :k" if call.full_output_key else "")
                + (", answered_by = :b" if call.answered_by else ""),
                ConditionExpression="attribute_exists(sk) AND attribute_not_exists(#o)",
                ExpressionAttributeNames={"#o": "output"},
                ExpressionAttributeValues={
                    ":o": call.output,
                    ":e": call.is_error,
                    ":t": call.truncated,
                    ":f": to_value(call.finished_at),
                    ":d": call.duration_ms,
                }
                | ({":k": call.full_output_key} if call.full_output_key else {})
                | ({":b": call.answered_by} if call.answered_by else {}),
            )
        except ClientError as error:
            if is_condition_failure(error):
                return self.get(call.run_id, call.call_id)
            raise
        return call
