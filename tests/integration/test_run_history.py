"""What happened, over the API (services/run_history.py), on the API's own wiring over moto: a thread's runs
newest first, page by page, each as GET /v1/runs/{run_id} answers it; and a run's execution state by state from
its history (recorded events, or moto's Step Functions), for its user and for operators only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from threadrunner.errors import NotFoundError, ServiceUnavailableError
from threadrunner.models.api_runs import CreateRunRequest, RunOut
from threadrunner.models.records import ThreadRecord
from threadrunner.services import run_history
from threadrunner.services.context import ApiContext, default_context
from threadrunner.services.runs import create_run, get_run

from local.stack import forget_cached_clients
from tests.support.aws import moto_tables
from tests.support.execution_histories import FakeStepFunctions, History

REGION = "us-east-1"
MACHINE = f"arn:aws:states:{REGION}:123456789012:stateMachine:threadrunner-run"
API_URL = "http://127.0.0.1:8765"


@dataclass
class World:
    api: ApiContext
    runs_table: Any

    def thread(self, user: str = "alice", purpose: str = "history") -> ThreadRecord:
        thread, _ = self.api.threads.get_or_create(
            user_id=user,
            assistant="data-analyst",
            purpose=purpose,
            engine="responses",
            max_age_hours=24,
            ttl_days=30,
        )
        return thread

    def runs(self, thread: ThreadRecord, count: int) -> list[RunOut]:
        """``count`` runs of the thread, oldest first: the first starts, the others queue behind it."""
        request = CreateRunRequest(message="Sales by region?", if_busy="enqueue")
        return [create_run(self.api, thread.user_id, thread.id, request) for _ in range(count)]

    def trace(self, run_id: str, user: str = "alice", *, operator: bool = False, events: Any = None) -> Any:
        client = events if isinstance(events, FakeStepFunctions) else FakeStepFunctions(events or [])
        return run_history.get_run_trace(
            self.api, user, run_id, operator=operator, api_url=API_URL, stepfunctions=client
        )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with moto_tables() as tables:
        for logical, table in tables.items():
            monkeypatch.setenv(f"THREADRUNNER_{logical.upper()}_TABLE", table.name)
        monkeypatch.setenv("THREADRUNNER_BUCKET", "run-history")
        monkeypatch.setenv("THREADRUNNER_RUNS_PER_MINUTE", "1000")
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        monkeypatch.setenv("AWS_REGION", REGION)
        forget_cached_clients()
        api = replace(default_context(), start_execution=lambda run_id: f"{_executions()}:{run_id}")
        yield World(api=api, runs_table=tables["runs"])
    forget_cached_clients()


def _executions() -> str:
    return MACHINE.replace(":stateMachine:", ":execution:")


def _two_round_history() -> History:
    history = History()
    history.add("ExecutionStarted", after=0)
    history.task("Start run", ms=0, took=20)
    history.task("Check run", ms=30, took=15)
    history.enter("Task", "Run tools", ms=50)
    history.add("TaskScheduled", ms=50)
    history.add(
        "TaskFailed",
        ms=55,
        taskFailedEventDetails={"error": "ToolCrashed", "cause": '{"errorMessage": "secret rows: 42"}'},
    )
    history.exit("Task", "Run tools", ms=56)
    history.task("Finish run", ms=60, took=5)
    history.add("ExecutionSucceeded", ms=70)
    return history


def test_a_threads_runs_are_listed_newest_first_page_by_page_as_each_run_is_read(world: World) -> None:
    # Given a thread with five runs (one started, four queued), and another thread's run
    thread = world.thread()
    created = world.runs(thread, 5)
    world.runs(world.thread(purpose="other"), 1)
    # When alice reads them two at a time, each page going on after the one before
    pages, after = [], None
    while True:
        page = run_history.list_thread_runs(world.api, "alice", thread.id, limit=2, after=after)
        pages.append([run.id for run in page.runs])
        if page.next is None:
            break
        assert page.next == page.runs[-1].id
        after = page.next
    # Then she gets exactly her thread's runs, newest first, the last page ending the list
    newest_first = [run.id for run in reversed(created)]
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:]]
    # and each run as GET /v1/runs/{run_id} answers it (a queued run with its place in the queue)
    everything = run_history.list_thread_runs(world.api, "alice", thread.id, limit=100, after=None)
    assert everything.runs == [get_run(world.api, "alice", run_id) for run_id in newest_first]
    assert [run.queue_position for run in everything.runs] == [4, 3, 2, 1, None]
    assert everything.next is None


def test_a_page_that_ends_the_list_exactly_has_no_next(world: World) -> None:
    thread = world.thread()
    world.runs(thread, 2)

    page = run_history.list_thread_runs(world.api, "alice", thread.id, limit=2, after=None)

    assert len(page.runs) == 2 and page.next is None


def test_other_items_of_a_runs_partition_are_not_runs(world: World) -> None:
    # Given an item of a run's partition that also carries thread_id and created_at (a run's event, say)
    thread = world.thread()
    (run,) = world.runs(thread, 1)
    world.runs_table.put_item(
        Item={"run_id": run.id, "sk": "event#1", "thread_id": thread.id, "created_at": "2099-01-01T00:00:00Z"}
    )
    # When the thread's runs are listed, Then only the run is
    page = run_history.list_thread_runs(world.api, "alice", thread.id, limit=1, after=None)
    assert [listed.id for listed in page.runs] == [run.id] and page.next is None
    assert [listed.id for listed in world.api.runs.list_for_thread(thread.id)] == [run.id]


def test_another_users_thread_and_an_after_of_another_thread_are_not_found(world: World) -> None:
    thread = world.thread()
    world.runs(thread, 1)
    (elsewhere,) = world.runs(world.thread(purpose="other"), 1)

    with pytest.raises(NotFoundError):
        run_history.list_thread_runs(world.api, "bob", thread.id, limit=20, after=None)
    with pytest.raises(NotFoundError):
        run_history.list_thread_runs(world.api, "alice", thread.id, limit=20, after=elsewhere.id)
    with pytest.raises(NotFoundError):
        run_history.list_thread_runs(world.api, "alice", thread.id, limit=20, after="run_" + "0" * 26)


def test_a_trace_lists_each_state_with_its_times_and_error_name_and_never_a_payload(world: World) -> None:
    # Given alice's started run whose execution went through four states, one failing (caught)
    (run,) = world.runs(world.thread(), 1)
    history = _two_round_history()
    # When she reads its trace
    trace = world.trace(run.id, events=history.events)
    # Then every state is there in order, with when it was entered and left and how long it took
    assert [(s.name, s.duration_ms, s.error) for s in trace.states] == [
        ("Start run", 20, None),
        ("Check run", 15, None),
        ("Run tools", 6, "ToolCrashed"),
        ("Finish run", 5, None),
    ]
    assert trace.states[0].entered_at == history.events[1]["timestamp"]
    assert trace.states[0].exited_at == history.events[5]["timestamp"]
    assert trace.transitions == 4
    assert trace.execution.status == "SUCCEEDED"
    assert trace.execution.arn == f"{_executions()}:{run.id}"
    # and the error's cause (which quotes what the tool saw) is not in the answer
    assert "secret rows" not in trace.model_dump_json()


def test_the_console_link_is_the_step_functions_console_or_locally_the_trace(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (run,) = world.runs(world.thread(), 1)

    deployed = world.trace(run.id).execution.console_url
    monkeypatch.setenv("THREADRUNNER_ENVIRONMENT", "local")
    forget_cached_clients()
    world.api = replace(world.api, run_settings=default_context().run_settings)
    local = world.trace(run.id).execution.console_url

    assert deployed == run.execution.console_url  # type: ignore[union-attr]
    assert deployed is not None and deployed.startswith(f"https://{REGION}.console.aws.amazon.com/states/")
    assert local == f"{API_URL}/v1/runs/{run.id}/trace"


def test_a_run_without_an_execution_has_no_states_and_no_status(world: World) -> None:
    # Given a queued run (behind the thread's active one): it has no execution yet
    _, queued = world.runs(world.thread(), 2)
    client = FakeStepFunctions(_two_round_history().events)

    trace = world.trace(queued.id, events=client)

    assert trace.states == [] and trace.transitions == 0
    assert trace.execution.model_dump() == {"arn": None, "console_url": None, "status": None}
    assert client.reads == []  # nothing to ask Step Functions


def test_an_execution_step_functions_no_longer_has_is_an_empty_trace(world: World) -> None:
    # Given a run whose execution moto's Step Functions does not know
    (run,) = world.runs(world.thread(), 1)
    # When its trace is read through a real (moto) client
    trace = run_history.get_run_trace(
        world.api, "alice", run.id, operator=False, api_url=API_URL, stepfunctions=_stepfunctions()
    )
    # Then it has no states and no status, and still names the execution
    assert (trace.states, trace.execution.status) == ([], None)
    assert trace.execution.arn is not None


def test_a_failing_history_read_is_a_service_unavailable(world: World) -> None:
    (run,) = world.runs(world.thread(), 1)

    class Throttled(FakeStepFunctions):
        def paginate(self, **arguments: Any) -> list[dict[str, Any]]:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "History")

    with pytest.raises(ServiceUnavailableError):
        world.trace(run.id, events=Throttled([]))


def test_only_the_runs_user_and_operators_read_its_trace(world: World) -> None:
    (run,) = world.runs(world.thread(), 1)
    events = _two_round_history().events

    with pytest.raises(NotFoundError):
        world.trace(run.id, "bob", events=events)
    as_operator = world.trace(run.id, "operator-1", operator=True, events=events)
    assert as_operator == world.trace(run.id, "alice", events=events)
    with pytest.raises(NotFoundError):  # a run that does not exist, for operators too
        world.trace("run_" + "0" * 26, "operator-1", operator=True)


def _stepfunctions() -> Any:
    return boto3.client("stepfunctions", region_name=REGION)


def test_the_trace_answer_is_json_of_names_times_and_counts(world: World) -> None:
    (run,) = world.runs(world.thread(), 1)

    answer = json.loads(world.trace(run.id, events=_two_round_history().events).model_dump_json())

    assert set(answer) == {"states", "transitions", "execution"}
    assert set(answer["execution"]) == {"arn", "console_url", "status"}
    assert {key for state in answer["states"] for key in state} == {
        "name",
        "entered_at",
        "exited_at",
        "duration_ms",
        "error",
    }
