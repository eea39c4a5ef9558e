"""Uploaded files: ``file#<id>`` items in the threads table, next to the threads of the same user (a user's
files are one Query away, for listing and for the storage quota)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from threadrunner.errors import NotFoundError
from threadrunner.models.records import FileRecord, FileStatus
from threadrunner.stores._dynamo import every_item, from_item, is_condition_failure, to_item, to_value
from threadrunner.stores.conditions import Attr, Key

REASON_CHARS = 500


def file_key(user_id: str, file_id: str) -> dict[str, str]:
    return {"user_id": user_id, "sk": f"file#{file_id}"}


class FileStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def create(self, record: FileRecord) -> None:
        self._table.put_item(
            Item=to_item(record, **file_key(record.user_id, record.id), kind="file"),
            ConditionExpression="attribute_not_exists(sk)",
        )

    def find(self, user_id: str, file_id: str) -> FileRecord | None:
        """The item as stored, a file being deleted included."""
        item = self._table.get_item(Key=file_key(user_id, file_id), ConsistentRead=True).get("Item")
        return from_item(FileRecord, item) if item else None

    def get(self, user_id: str, file_id: str) -> FileRecord:
        """The caller's file; someone else's, a missing one and one being deleted are all not found."""
        record = self.find(user_id, file_id)
        if record is None or record.deleting_at is not None:
            raise NotFoundError(f"file {file_id} not found")
        return record

    def all_for_user(self, user_id: str) -> list[FileRecord]:
        """Every file of the user, oldest first (ids sort by creation), deleting ones included."""
        arguments: dict[str, Any] = {
            "KeyConditionExpression": Key("user_id").eq(user_id) & Key("sk").begins_with("file#"),
            "ConsistentRead": True,
        }
        return [from_item(FileRecord, item) for item in every_item(self._table.query, **arguments)]

    def everyone(self) -> list[FileRecord]:
        """Every file of every user (a Scan, for the daily sweep)."""
        arguments: dict[str, Any] = {"FilterExpression": Attr("kind").eq("file")}
        return [from_item(FileRecord, item) for item in every_item(self._table.scan, **arguments)]

    def for_thread(self, user_id: str, thread_id: str) -> list[FileRecord]:
        return [record for record in self.all_for_user(user_id) if record.thread_id == thread_id]

    def claim_staging(self, user_id: str, file_id: str, until: datetime) -> bool:
        """Only one staging attempt uploads upstream: False when another one claimed the file first, or the
        file is no longer pending (staged, failed, being deleted, gone)."""
        return self._conditional_set(
            user_id,
            file_id,
            {"staging_until": until},
            "#status = :pending AND attribute_not_exists(staging_until) AND attribute_not_exists(deleting_at)",
        )

    def mark_copied(self, user_id: str, file_id: str, at: datetime) -> bool:
        """The claiming attempt copied the upload to the file's own key: a later attempt keeps that copy."""
        return self._conditional_set(user_id, file_id, {"copied_at": at}, "#status = :pending")

    def release_staging(self, user_id: str, file_id: str) -> None:
        """The upstream refused for a while (rate limit, outage): nothing was created, a retry may claim."""
        self._table.update_item(Key=file_key(user_id, file_id), UpdateExpression="REMOVE staging_until")

    def mark_ready(self, user_id: str, file_id: str, upstream_file_id: str | None, at: datetime) -> bool:
        """False when the file was deleted (or failed) while it was being staged."""
        fields: dict[str, Any] = {"status": FileStatus.ready.value, "staged_at": at}
        if upstream_file_id is not None:
            fields["upstream_file_id"] = upstream_file_id
        return self._conditional_set(
            user_id, file_id, fields, "#status = :pending AND attribute_not_exists(deleting_at)"
        )

    def mark_failed(self, user_id: str, file_id: str, reason: str) -> bool:
        return self._conditional_set(
            user_id,
            file_id,
            {"status": FileStatus.failed.value, "reason": reason[:REASON_CHARS]},
            "#status = :pending",
        )

    def mark_deleting(self, user_id: str, file_id: str, at: datetime) -> None:
        self._conditional_set(user_id, file_id, {"deleting_at": at}, "attribute_exists(sk)")

    def delete(self, user_id: str, file_id: str) -> None:
        self._table.delete_item(Key=file_key(user_id, file_id))

    def _conditional_set(self, user_id: str, file_id: str, fields: dict[str, Any], condition: str) -> bool:
        names = {f"#{name}": name for name in fields}
        if "#status" in condition:
            names["#status"] = "status"
        values = {f":{name}": to_value(value) for name, value in fields.items()}
        if ":pending" in condition:
            values[":pending"] = FileStatus.pending.value
        try:
            self._table.update_item(
                Key=file_key(user_id, file_id),
                UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in fields),
                ConditionExpression=f"attribute_exists(sk) AND {condition}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True
