"""Idempotency-Key on the POSTs that create something (threads, runs, files), with Powertools idempotency.

A client that retries a create (a timeout, a dropped connection) sends the same ``Idempotency-Key``: the first
request runs, its answer (status and body) is stored in the idempotency table, and every repeat within
``idempotency_expires_seconds`` gets that answer back without running anything again. Keys are scoped to the
caller (the token's ``sub`` is part of what is hashed), so two users' keys never collide. The same key with
another route or body is a 422 naming the header; a repeat while the first is still running is a 409.
An error answer is not stored (Powertools deletes the record when the call raises): a retry runs again.

Records sit in the caller's own partition (``user_id``; the sort key is Powertools' ``api#<hash>``), so deleting
a user's data deletes their stored answers too (``delete_all``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from threadrunner.errors import ConflictError, InvalidRequestError, ServiceUnavailableError
from threadrunner.models.deferred_model import DeferredModel
from threadrunner.stores._dynamo import every_item
from threadrunner.stores.conditions import Key
from threadrunner.stores.tables import IDEMPOTENCY

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

HEADER = "Idempotency-Key"
# Printable ASCII without spaces: UUIDs, ULIDs and the like. Longer keys are refused, not truncated.
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
KEY_MAX_LENGTH = 255
# One prefix for every route: the key is the caller's, whatever route it is first used on.
_KEY_PREFIX = "api"


class StoredAnswer(DeferredModel):
    """What the first request answered; ``replayed`` is set on the copies handed to repeats."""

    model_config = ConfigDict(frozen=True)

    status: int
    body: dict[str, Any]
    replayed: bool = False


# The caller of the request being made idempotent: the partition its record lives in.
_caller: ContextVar[str] = ContextVar("idempotency_caller")


# Powertools idempotency is imported when the first IdempotentRequests is made, not with this module (which the
# API handler imports at INIT for HEADER): its DynamoDB persistence layer imports all of boto3.
@cache
def _per_caller_persistence() -> type:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    class PerCallerPersistence(DynamoDBPersistenceLayer):
        """Powertools' composite-key layout keeps every record under one fixed partition value; ours is the
        caller, so a user's records can be found (and deleted) together. Set per request through a context
        variable (one persistence layer per container: a layer per request would register a botocore handler
        each time)."""

        def _get_key(self, idempotency_key: str) -> dict[str, Any]:
            return {
                IDEMPOTENCY.partition_key: {"S": _caller.get()},
                IDEMPOTENCY.sort_key: {"S": idempotency_key},
            }

    return PerCallerPersistence


class IdempotentRequests:
    """Runs a create at most once per (caller, key). Injected with the idempotency table (a boto3 Table, for
    deletes) and a DynamoDB client (Powertools speaks the low-level API: a Table's own client would serialise
    its attribute values a second time)."""

    def __init__(self, table: Any, dynamodb_client: Any, *, expires_after_seconds: int) -> None:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

        self._table = table
        self._config = IdempotencyConfig(
            # What identifies the request: the caller and their key. What must match on a repeat: the
            # operation (method and path) and the parsed body.
            event_key_jmespath="[user_id, key]",
            payload_validation_jmespath="[operation, body]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=expires_after_seconds,
            hash_function="sha256",
            response_hook=_mark_replayed,
        )
        persistence = _per_caller_persistence()(
            table_name=table.name,
            key_attr=IDEMPOTENCY.partition_key,
            sort_key_attr=IDEMPOTENCY.sort_key,
            boto3_client=dynamodb_client,
        )
        self._once = idempotent_function(
            _run,
            data_keyword_argument="request",
            persistence_store=persistence,
            config=self._config,
            key_prefix=_KEY_PREFIX,
        )

    def register_lambda_context(self, context: Any) -> None:
        """A request in progress is taken as abandoned once its Lambda would have timed out, so a repeat after
        a crash runs again instead of answering 409 until the record expires."""
        self._config.register_lambda_context(context)

    def run(
        self,
        *,
        user_id: str,
        key: str,
        operation: str,
        body: dict[str, Any],
        create: Callable[[], tuple[int, BaseModel]],
    ) -> StoredAnswer:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyInconsistentStateError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        request = {"user_id": user_id, "key": key, "operation": operation, "body": body}
        caller = _caller.set(user_id)
        try:
            stored = self._once(request=request, create=create)
        except IdempotencyValidationError:
            raise InvalidRequestError(
                f"{HEADER}: this key was already used for another request; use a new key for a new request",
                field=HEADER,
            ) from None
        except IdempotencyAlreadyInProgressError:
            raise ConflictError(
                f"{HEADER}: a request with this key is still in progress; retry once it has answered",
                field=HEADER,
            ) from None
        except (IdempotencyPersistenceLayerError, IdempotencyInconsistentStateError) as error:
            # The idempotency table failed, or changed under Powertools' feet more often than it retries.
            raise ServiceUnavailableError("the request could not be made idempotent; try again") from error
        finally:
            _caller.reset(caller)
        return StoredAnswer.model_validate(stored)

    def delete_all(self, user_id: str) -> None:
        """Every stored answer of the user (their data is being deleted)."""
        keys = (IDEMPOTENCY.partition_key, IDEMPOTENCY.sort_key)
        arguments: dict[str, Any] = {
            "KeyConditionExpression": Key(IDEMPOTENCY.partition_key).eq(user_id),
            "ProjectionExpression": ", ".join(keys),
        }
        with self._table.batch_writer() as batch:
            for item in every_item(self._table.query, **arguments):
                batch.delete_item(Key={name: item[name] for name in keys})


def _run(*, request: dict[str, Any], create: Callable[[], tuple[int, BaseModel]]) -> dict[str, Any]:
    del request  # hashed by Powertools, not needed to create
    status, body = create()
    return StoredAnswer(status=status, body=body.model_dump(mode="json")).model_dump(mode="json")


def _mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    del idempotent_data
    return {**response, "replayed": True}
