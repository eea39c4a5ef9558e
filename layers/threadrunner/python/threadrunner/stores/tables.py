"""The DynamoDB tables, declared once: the CDK storage construct and the local stack both build from this.

threads: partition ``user_id``, sort ``sk``. Items: ``thread#<id>`` (a thread) and ``slot#<assistant>#<purpose>``
  (which thread is current for that key, so concurrent get-or-create calls agree). TTL on ``expires_at``.
  Also ``usage#<yyyy-mm-dd>``: the user's usage counters for that UTC day (stores/usage.py).
runs: partition ``run_id``, sort ``sk``. Items: ``run`` (the run) and ``call#<call_id>`` (the tool-call ledger).
  The sparse index ``by_thread`` lists a thread's runs in creation order. Also ``assistant#<name>`` /
  ``upstream#<environment>``: the upstream assistant an assistant definition is synced to
  (stores/upstream_assistants.py);
  ``chat#<nnnn>`` items of a run's partition: the chat engine's completions (stores/chat_rounds.py); and
  ``breaker#<environment>`` / ``engine#<engine>``: an engine's open circuit breaker (stores/breakers.py).
  The sparse index ``active_runs`` holds the runs not yet ended (``active`` is removed when a run ends): the
  operators' kill switch lists them across users. ``response#<id>`` / ``wait``: who waits for an upstream
  response's webhook (stores/response_waits.py). TTL on ``expires_at`` (only those items set it; a run and its
  ledger go with their thread).
messages: partition ``thread_id``, sort ``message_id`` (``<run id>.<nnnn>``: run ids sort by creation, so the log
  reads in order, each run's user message first). Bodies past a size limit live in S3 (stores/messages.py).
idempotency: partition ``user_id``, sort ``sk`` (``api#<hash of the key>``), TTL on ``expiration``: the API's
  Idempotency-Key records (threadrunner/idempotency.py, Powertools idempotency's composite-key layout), one partition
  per user so that deleting a user's data takes them too. Only the api function uses this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str


@dataclass(frozen=True)
class TableSpec:
    logical_name: str
    partition_key: str
    sort_key: str
    ttl_attribute: str | None = None
    indexes: tuple[Index, ...] = field(default_factory=tuple)


THREADS = TableSpec(
    logical_name="threads", partition_key="user_id", sort_key="sk", ttl_attribute="expires_at"
)
ACTIVE_RUNS_INDEX = "active_runs"
RUNS = TableSpec(
    logical_name="runs",
    partition_key="run_id",
    sort_key="sk",
    ttl_attribute="expires_at",
    indexes=(
        Index(name="by_thread", partition_key="thread_id", sort_key="created_at"),
        Index(name=ACTIVE_RUNS_INDEX, partition_key="active", sort_key="created_at"),
    ),
)
MESSAGES = TableSpec(logical_name="messages", partition_key="thread_id", sort_key="message_id")
IDEMPOTENCY = TableSpec(
    logical_name="idempotency", partition_key="user_id", sort_key="sk", ttl_attribute="expiration"
)
ALL_TABLES = (THREADS, RUNS, MESSAGES, IDEMPOTENCY)
