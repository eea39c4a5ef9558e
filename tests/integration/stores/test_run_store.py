"""RunStore over moto: an ended run stays ended, whatever a step still running writes after."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from threadrunner import clock
from threadrunner.errors import NotFoundError
from threadrunner.models.records import ActionType, RequiredAction, RunRecord, RunStatus
from threadrunner.models.run_events import RunEventType
from threadrunner.stores.runs import RunStore

from tests.support.aws import moto_tables


@pytest.fixture
def runs() -> Iterator[RunStore]:
    with moto_tables() as tables:
        yield RunStore(tables["runs"])


def _run(**fields: Any) -> RunRecord:
    now = clock.now()
    return RunRecord(
        id=clock.new_id("run"),
        thread_id=clock.new_id("thr"),
        user_id="alice",
        assistant="data-analyst",
        engine="responses",
        model="gpt-4.1-mini",
        message="hello",
        created_at=now,
        deadline_at=now + timedelta(minutes=5),
        **fields,
    )


def test_a_step_still_running_after_the_run_ended_does_not_bring_it_back(runs: RunStore) -> None:
    # Given a run the reconciler ended while its Check run Lambda was still polling (a timed-out execution)
    run = _run()
    runs.create(run)
    assert runs.finish(run.id, status=RunStatus.failed, completed_at=clock.now())
    # When that Lambda records what it saw
    runs.update(run.id, status=RunStatus.in_progress, started_at=clock.now())
    # Then the run stays failed, and nothing of the late write is kept
    stored = runs.get(run.id)
    assert stored.status is RunStatus.failed
    assert stored.started_at is None


def test_a_status_change_of_a_running_run_is_written(runs: RunStore) -> None:
    run = _run()
    runs.create(run)
    runs.update(run.id, status=RunStatus.in_progress, started_at=clock.now())
    assert runs.get(run.id).status is RunStatus.in_progress and runs.get(run.id).started_at is not None


def test_updating_a_deleted_run_says_it_is_gone(runs: RunStore) -> None:
    with pytest.raises(NotFoundError):
        runs.update(clock.new_id("run"), status=RunStatus.in_progress)
    with pytest.raises(NotFoundError):
        runs.update(clock.new_id("run"), answer="late")


def _waiting_for_approval(runs: RunStore) -> RunRecord:
    run = _run(round=1)
    runs.create(run)
    action = RequiredAction(
        type=ActionType.approve_tool_calls,
        round=1,
        call_ids=["call_db"],
        expires_at=clock.now() + timedelta(minutes=15),
    )
    runs.update(run.id, status=RunStatus.requires_action, required_action=action)
    return run


def test_approvals_that_move_the_wait_on_to_client_tools_keep_the_task_token(runs: RunStore) -> None:
    # Given a run waiting for approvals whose wait stored its task token in the meantime
    run = _waiting_for_approval(runs)
    assert runs.store_action_token(run.id, 1, "token-1")
    expires_at = runs.get(run.id).required_action.expires_at  # type: ignore[union-attr]
    # When the approvals move the same wait on to the round's client tool
    assert runs.advance_action(run.id, 1, call_ids=["call_weather"], approvals_digest="d1")
    # Then the token and expiry are the wait's still, and the action waits for the client's outputs
    action = runs.get(run.id).required_action
    assert action is not None
    assert (action.type.value, action.call_ids, action.task_token) == (
        "submit_tool_outputs",
        ["call_weather"],
        "token-1",
    )
    assert action.expires_at == expires_at and action.approvals_digest == "d1"
    # and a second, concurrent move finds nothing left to move
    assert not runs.advance_action(run.id, 1, call_ids=["call_weather"], approvals_digest="d2")


def test_a_token_stored_after_the_approvals_moved_the_wait_on_is_kept(runs: RunStore) -> None:
    run = _waiting_for_approval(runs)
    assert runs.advance_action(run.id, 1, call_ids=["call_weather"], approvals_digest="d1")
    assert runs.store_action_token(run.id, 1, "token-late")
    assert runs.get(run.id).required_action.task_token == "token-late"  # type: ignore[union-attr]


def test_a_runs_place_is_its_thread_and_assistant_and_a_missing_run_is_not_found(runs: RunStore) -> None:
    run = _run()
    runs.create(run)
    place = runs.place(run.id)
    assert (place.thread_id, place.assistant) == (run.thread_id, run.assistant)
    with pytest.raises(NotFoundError):
        runs.place("run_missing")


def test_a_deleted_run_leaves_nothing_even_when_its_end_is_logged_during_the_delete(runs: RunStore) -> None:
    # Given a run with an event, and Finish run logging the run's end while the delete reads the partition
    run = _run()
    runs.create(run)
    assert runs.events.log(run, RunEventType.run_started, {}, key="run.started") is not None
    racing = RunStore(
        _LogsDuringFirstQuery(
            runs._table, lambda: runs.events.log(run, RunEventType.run_cancelled, {}, key="run.ended")
        )
    )
    # When the run is deleted (its thread was force-deleted)
    racing.delete(run.id)
    # Then its partition is empty: the late event was refused (the run was gone) or swept up
    assert runs.find(run.id) is None
    assert runs.events.after(run.id) == []


class _LogsDuringFirstQuery:
    """A table whose first query runs ``meanwhile`` once it has read (a step writing while a delete works)."""

    def __init__(self, table: Any, meanwhile: Any) -> None:
        self._table, self._meanwhile = table, meanwhile

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def query(self, **arguments: Any) -> Any:
        answer = self._table.query(**arguments)
        meanwhile, self._meanwhile = self._meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return answer
