"""A seeded storm of faults on the local stack: whatever fails, and wherever, every run ends, every lock is
released, no queued run is lost and nothing is left open upstream.

Waves of one to three runs on one thread (the later ones queued behind the first) each get a fault chosen
at random: an upstream error, a step's Lambda killed once or failing for good, a tool's Lambda dying, Finish
run failing every retry, an operator stopping the execution, a user cancelling, the thread deleted mid-run,
DynamoDB transactions conflicting. Each fault is played at least once; the seed (``THREADRUNNER_FAULT_SEED``
to try another) makes the storm reproducible. The invariants are checked after the storm, on the stack's
own tables and on the upstream, not only through the API.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.client
import httpx
import pytest
from botocore.exceptions import ClientError
from threadrunner.workflow import tool_steps

from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import TERMINAL, new_thread
from tests.e2e.test_faults import FAST_RETRIES
from tests.support.lifecycle import table

SEED = int(os.environ.get("THREADRUNNER_FAULT_SEED", "20261207"))
MIN_RUNS = 32
QUESTION = "What were total sales by region last quarter?"
# How Lambda reports a killed function (the local dispatch names the error after the exception's type).
LambdaKilled = type("Runtime.ExitError", (Exception,), {})
LambdaTimedOut = type("Sandbox.Timedout", (Exception,), {})


class StepFailed(Exception):
    """A step failing for good with an error of its own (no retry covers it)."""


@dataclass
class Wave:
    """One fault, played on one thread with ``runs`` runs (the first active, the others queued)."""

    storm: Storm
    thread_id: str
    runs: int
    posted: list[str] = field(default_factory=list)

    def post(self, message: str, *, enqueue: bool) -> str:
        body: dict[str, Any] = {"message": message}
        if enqueue:
            body["if_busy"] = "enqueue"
        answer = self.storm.client.post(f"/v1/threads/{self.thread_id}/runs", json=body)
        assert answer.status_code == 202, answer.text
        self.posted.append(answer.json()["id"])
        return str(answer.json()["id"])

    def post_all(self) -> None:
        for index in range(self.runs):
            self.post(f"{QUESTION} ({index})", enqueue=index > 0)

    def first_in_progress(self) -> dict[str, Any]:
        return self.storm.until_status(self.posted[0], {"in_progress", *TERMINAL})


@dataclass
class Storm:
    client: httpx.Client
    upstream: EmulatorServer
    stack: LocalStack
    monkeypatch: pytest.MonkeyPatch
    rng: random.Random
    threads: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    deleted_runs: set[str] = field(default_factory=set)
    runs_of: dict[str, list[str]] = field(default_factory=dict)  # thread id -> its runs so far
    played: list[str] = field(default_factory=list)

    def until_status(self, run_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            answer = self.client.get(f"/v1/runs/{run_id}")
            if answer.status_code == 404 and run_id in self.deleted_runs:
                return {"id": run_id, "status": "deleted"}
            assert answer.status_code == 200, answer.text
            if answer.json()["status"] in statuses:
                return dict(answer.json())
            assert time.monotonic() < deadline, (
                f"run {run_id} still {answer.json()['status']} ({self.played})"
            )
            time.sleep(0.05)

    def step_replaced(
        self, folder: str, fail: Callable[[int], Exception | None]
    ) -> AbstractContextManager[None]:
        """``functions/<folder>`` fails with ``fail(n)`` on its n-th invocation (None: it runs as usual)."""
        original = self.stack.lambdas.handler_for(folder)
        calls: list[int] = []

        def handler(event: Any, context: Any) -> Any:
            calls.append(1)
            error = fail(len(calls))
            if error is not None:
                raise error
            return original(event, context)

        return self.stack.lambdas.replaced(folder, handler)


# Each fault scripts the upstream for the wave and plays its part; ``runs`` bounds the wave's size.
Fault = Callable[[Wave], AbstractContextManager[None]]


def post_answered(wave: Wave) -> None:
    wave.storm.upstream.script(*[Plan.message(f"answer {i}") for i in range(wave.runs)])
    wave.post_all()


def post_with_tool_rounds(wave: Wave) -> None:
    for i in range(wave.runs):
        wave.storm.upstream.script(
            Plan.tool_calls([("get_table_schema", {"table": "sales"})]), Plan.message(f"answer {i}")
        )
    wave.post_all()


@contextmanager
def answers(wave: Wave) -> Iterator[None]:
    post_answered(wave)
    yield


@contextmanager
def tool_rounds(wave: Wave) -> Iterator[None]:
    post_with_tool_rounds(wave)
    yield


@contextmanager
def rate_limited(wave: Wave) -> Iterator[None]:
    wave.storm.upstream.script(
        Plan.http_error(429, "rate_limit_exceeded", times=2, retry_after_ms=10),
        *[Plan.message(f"answer {i}") for i in range(wave.runs)],
    )
    wave.post_all()
    yield


@contextmanager
def create_refused_with_500(wave: Wave) -> Iterator[None]:
    wave.storm.upstream.script(
        Plan.http_error(500, None), *[Plan.message(f"answer {i}") for i in range(wave.runs)]
    )
    wave.post_all()
    yield


@contextmanager
def model_failed(wave: Wave) -> Iterator[None]:
    wave.storm.upstream.script(
        Plan.fail("server_error", "boom"), *[Plan.message(f"answer {i}") for i in range(wave.runs)]
    )
    wave.post_all()
    yield


STEPS = ["start_run", "check_run", "submit_tool_outputs", "collect_outputs", "finish_run"]


@contextmanager
def step_killed_once(wave: Wave) -> Iterator[None]:
    folder = wave.storm.rng.choice(STEPS)
    wave.storm.played[-1] += f" ({folder})"
    with wave.storm.step_replaced(folder, lambda n: LambdaKilled("signal: killed") if n == 1 else None):
        post_with_tool_rounds(wave)
        yield


@contextmanager
def step_failing(wave: Wave) -> Iterator[None]:
    folder = wave.storm.rng.choice(["check_run", "collect_outputs", "submit_tool_outputs"])
    wave.storm.played[-1] += f" ({folder})"
    with wave.storm.step_replaced(folder, lambda n: StepFailed("it broke")):
        post_with_tool_rounds(wave)
        yield


@contextmanager
def tool_lambda_dies(wave: Wave) -> Iterator[None]:
    call_tool = tool_steps.call_tool

    def dies(name: str, arguments: str, context: Any) -> Any:
        raise LambdaTimedOut("Task timed out after 60.00 seconds")

    wave.storm.monkeypatch.setattr(tool_steps, "call_tool", dies)
    try:
        post_with_tool_rounds(wave)
        yield
    finally:
        wave.storm.monkeypatch.setattr(tool_steps, "call_tool", call_tool)


@contextmanager
def finish_run_never_works(wave: Wave) -> Iterator[None]:
    wave.runs = 1  # each run takes Finish run's whole retry schedule before the reconciler ends it
    with wave.storm.step_replaced("finish_run", lambda n: LambdaTimedOut("Task timed out")):
        post_answered(wave)
        yield


@contextmanager
def stopped_by_an_operator(wave: Wave) -> Iterator[None]:
    storm = wave.storm
    storm.upstream.script(Plan.never_finishes(), *[Plan.message(f"answer {i}") for i in range(wave.runs)])
    wave.post_all()
    running = wave.first_in_progress()
    if running["status"] == "in_progress":
        client = storm.stack.client("stepfunctions")
        for _ in range(50):  # moto refuses a stop while the execution sets itself up
            try:
                client.stop_execution(executionArn=running["execution"]["arn"], cause="stopped by ops")
                break
            except AttributeError:
                time.sleep(0.02)
    yield


@contextmanager
def cancelled_by_the_user(wave: Wave) -> Iterator[None]:
    storm = wave.storm
    storm.upstream.script(Plan.never_finishes(), *[Plan.message(f"answer {i}") for i in range(wave.runs)])
    wave.post_all()
    wave.first_in_progress()
    for run_id in storm.rng.sample(wave.posted, k=storm.rng.randint(1, len(wave.posted))):
        assert storm.client.post(f"/v1/runs/{run_id}/cancel").status_code in (200, 202)
    yield


@contextmanager
def thread_deleted_mid_run(wave: Wave) -> Iterator[None]:
    storm = wave.storm
    storm.upstream.script(Plan.never_finishes())
    wave.post_all()
    wave.first_in_progress()
    deleted = storm.client.delete(f"/v1/threads/{wave.thread_id}", params={"force": "true"})
    assert deleted.status_code == 202, deleted.text
    # the thread's earlier runs go with it
    storm.deleted_runs.update(wave.posted, storm.runs_of.get(wave.thread_id, []))
    storm.threads[storm.threads.index(wave.thread_id)] = new_thread(storm.client, f"storm-{len(storm.runs)}")[
        "id"
    ]
    yield


@contextmanager
def transactions_conflicting(wave: Wave) -> Iterator[None]:
    """DynamoDB cancels some transactions for a conflicting one (never more than twice in a row)."""
    storm = wave.storm
    make_api_call = botocore.client.BaseClient._make_api_call
    in_a_row: list[int] = [0]
    rng = random.Random(storm.rng.random())

    def conflicting(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "TransactWriteItems" and in_a_row[0] < 2 and rng.random() < 0.4:
            in_a_row[0] += 1
            reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
            raise ClientError(
                {
                    "Error": {
                        "Code": "TransactionCanceledException",
                        "Message": "Transaction cancelled, please refer cancellation reasons for specific "
                        "reasons [TransactionConflict]",
                    },
                    "CancellationReasons": reasons * len(params.get("TransactItems", [1])),
                },
                operation,
            )
        if operation == "TransactWriteItems":
            in_a_row[0] = 0
        return make_api_call(client, operation, params)

    wave.storm.monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", conflicting)
    try:
        post_with_tool_rounds(wave)
        yield
    finally:
        wave.storm.monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)


FAULTS: dict[str, Fault] = {
    "answers": answers,
    "tool rounds": tool_rounds,
    "429 burst": rate_limited,
    "500 answering a create": create_refused_with_500,
    "the model failed": model_failed,
    "a step killed once": step_killed_once,
    "a step failing for good": step_failing,
    "a tool Lambda dying": tool_lambda_dies,
    "Finish run never working": finish_run_never_works,
    "stopped by an operator": stopped_by_an_operator,
    "cancelled by the user": cancelled_by_the_user,
    "thread deleted mid-run": thread_deleted_mid_run,
    "transactions conflicting": transactions_conflicting,
}


def test_a_seeded_storm_of_faults_leaves_every_run_ended_every_lock_free_and_nothing_open_upstream(
    client_for: Callable[[str], httpx.Client],
    upstream: EmulatorServer,
    local_stack: LocalStack,
    configure: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(**FAST_RETRIES)
    rng = random.Random(SEED)
    user = f"storm-{SEED}"
    storm = Storm(client_for(user), upstream, local_stack, monkeypatch, rng)
    storm.threads = [new_thread(storm.client, f"storm-{i}")["id"] for i in range(3)]
    # Given every fault at least once, in a seeded order, then more picked at random
    names = list(FAULTS)
    rng.shuffle(names)
    while len(storm.runs) < MIN_RUNS or names:
        name = names.pop() if names else rng.choice(list(FAULTS))
        storm.played.append(name)
        wave = Wave(storm, rng.choice(storm.threads), rng.randint(1, 3))
        # When the wave's runs meet the fault
        with ExitStack() as playing:
            playing.enter_context(FAULTS[name](wave))
            for run_id in wave.posted:
                storm.until_status(run_id, TERMINAL)
        storm.runs.extend(wave.posted)
        storm.runs_of.setdefault(wave.thread_id, []).extend(wave.posted)
        local_stack.lambdas.wait_idle(timeout=10)

    # Then no run is left unended, through the API and in the runs table (queued ones included)
    assert len(storm.runs) >= MIN_RUNS
    for run_id in storm.runs:
        assert storm.until_status(run_id, TERMINAL | {"deleted"}, timeout=5)["status"] in TERMINAL | {
            "deleted"
        }
    runs = [
        item
        for item in table(local_stack.table_names, "runs").scan()["Items"]
        if item.get("user_id") == user and item["sk"] == "run"  # not the runs' events
    ]
    unended = [(item["run_id"], item["status"]) for item in runs if item.get("status") not in TERMINAL]
    assert unended == [], storm.played
    # and no thread holds a lock or a queue
    held = [
        (item["sk"], item.get("active_run_id"), item.get("queued_run_ids"))
        for item in table(local_stack.table_names, "threads").scan()["Items"]
        if item["user_id"] == user and (item.get("active_run_id") or item.get("queued_run_ids"))
    ]
    assert held == [], storm.played
    # and nothing is left open upstream: no response running, no function call waiting for its output
    assert upstream.open_calls() == [], storm.played
    # and every thread takes its next run at once
    for thread_id in storm.threads:
        upstream.script(Plan.message("calm again"))
        posted = storm.client.post(f"/v1/threads/{thread_id}/runs", json={"message": "and now?"})
        assert posted.status_code == 202, posted.text
        assert storm.until_status(posted.json()["id"], TERMINAL)["status"] == "completed"
