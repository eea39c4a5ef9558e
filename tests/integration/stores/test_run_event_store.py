"""The run event log over moto: seq 1, 2, 3, ... with no gap and no duplicate, whoever appends at once and
however often a step is retried; a reader resuming after N gets exactly what came after."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from threadrunner.models.run_events import RunEventType
from threadrunner.stores.run_events import RunEventStore, RunRef

from tests.support.aws import moto_tables

RUN = RunRef(run_id="run_1", user_id="alice", thread_id="thr_1")


@pytest.fixture
def events() -> Iterator[RunEventStore]:
    with moto_tables() as tables:
        tables["runs"].put_item(Item={"run_id": RUN.run_id, "sk": "run", "user_id": "alice"})
        yield RunEventStore(tables["runs"])


def test_events_get_consecutive_seqs_and_read_back_in_order(events: RunEventStore) -> None:
    events.append(RUN, RunEventType.run_queued, key="run.queued")
    events.append(RUN, RunEventType.run_started, key="run.started")
    events.append(RUN, RunEventType.model_started, {"round": 0}, key="model.started#0")

    logged = events.after(RUN.run_id)

    assert [(e.seq, e.type) for e in logged] == [
        (1, RunEventType.run_queued),
        (2, RunEventType.run_started),
        (3, RunEventType.model_started),
    ]
    assert logged[2].data == {"round": 0}


def test_a_retried_step_logs_its_event_once(events: RunEventStore) -> None:
    first = events.append(RUN, RunEventType.run_started, key="run.started")
    # When the step runs again (a Lambda retried) and logs the same event
    repeat = events.append(RUN, RunEventType.run_started, key="run.started")
    # Then the repeat is dropped: one event, and the next one follows it without a gap
    assert first is not None and first.seq == 1 and repeat is None
    later = events.append(RUN, RunEventType.run_completed, key="run.completed")
    assert later is not None and later.seq == 2


def test_parallel_appends_take_every_seq_once(events: RunEventStore) -> None:
    # Given twenty tool calls of one round ending at the same moment (Run tools' Map)
    def complete(index: int) -> None:
        events.append(
            RUN, RunEventType.tool_call_completed, {"id": f"call_{index}"}, key=f"tool_call.completed#{index}"
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(complete, range(20)))
        # and each retried once
        list(pool.map(complete, range(20)))

    logged = events.after(RUN.run_id)
    assert [e.seq for e in logged] == list(range(1, 21))
    assert sorted(e.data["id"] for e in logged) == sorted(f"call_{i}" for i in range(20))


def test_a_reader_resuming_after_n_gets_exactly_the_rest(events: RunEventStore) -> None:
    for index in range(7):
        events.append(RUN, RunEventType.message_delta, {"text": str(index)}, key=f"delta#{index}")
    seen: list[int] = []
    after = 0
    while batch := events.after(RUN.run_id, after, limit=3):
        seen.extend(e.seq for e in batch)
        after = batch[-1].seq
    assert seen == list(range(1, 8))
    assert events.after("run_other") == []


def test_nothing_is_logged_for_a_run_that_is_gone(events: RunEventStore) -> None:
    # Given a run whose thread's cleanup deleted it while a step was still running
    gone = RunRef(run_id="run_gone", user_id="alice", thread_id="thr_1")
    # When the step logs its event, Then nothing is written into the deleted run's partition
    assert events.append(gone, RunEventType.run_cancelled, key="run.ended") is None
    assert events.after("run_gone") == []


def test_a_rounds_events_logged_together_take_consecutive_seqs_once(events: RunEventStore) -> None:
    run = SimpleNamespace(id=RUN.run_id, user_id=RUN.user_id, thread_id=RUN.thread_id)
    batch = [
        (RunEventType.tool_call_created, {"id": f"call_{n}"}, f"tool_call.created#call_{n}")
        for n in range(90)
    ]
    events.append(RUN, RunEventType.run_started, key="run.started")
    # When a step logs ninety events together, and again when it is retried
    events.log_many(run, batch)
    events.log_many(run, batch)
    # Then they follow the earlier event, in order, each once
    logged = events.after(RUN.run_id, limit=200)
    assert [e.seq for e in logged] == list(range(1, 92))
    assert [e.data.get("id") for e in logged[1:]] == [f"call_{n}" for n in range(90)]
