"""RunStore over moto: an ended run stays ended, whatever a step still running writes after."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from threadrunner import clock
from threadrunner.errors import NotFoundError
from threadrunner.models.records import RunRecord, RunStatus
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
