"""One run at a time per thread: 409 by default, a queue on request, cancel, and a lock that is always
given back (the upstream locks a conversation while a response runs)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import httpx
import pytest

from local.emulator import EmulatorServer, Plan
from tests.e2e.conftest import new_thread, wait_for_run

SLOW_POLLS = {"THREADRUNNER_POLL_FIRST_SECONDS": "1", "THREADRUNNER_POLL_MAX_SECONDS": "1"}


@pytest.fixture
def one_second_polls(configure: Callable[..., None]) -> None:
    """Runs that take a second or two, so the next requests find them active."""
    configure(**SLOW_POLLS)


def _post_run(client: httpx.Client, thread_id: str, message: str, **options: str) -> httpx.Response:
    return client.post(f"/v1/threads/{thread_id}/runs", json={"message": message, **options})


@pytest.mark.usefixtures("one_second_polls")
def test_runs_queued_behind_a_busy_thread_run_in_order_once_each(
    alice: httpx.Client, upstream: EmulatorServer
) -> None:
    upstream.script(*(Plan.message(f"answer {n}") for n in range(1, 5)))
    thread = new_thread(alice, "queue")
    # Given an active run
    first = _post_run(alice, thread["id"], "question 1").json()
    # When another run is posted without asking to wait, it is refused with the active run's id
    refused = _post_run(alice, thread["id"], "impatient")
    assert refused.status_code == 409 and refused.json()["active_run_id"] == first["id"]
    # and three runs that ask to wait are queued in order
    queued = [_post_run(alice, thread["id"], f"question {n}", if_busy="enqueue") for n in (2, 3, 4)]
    assert [r.status_code for r in queued] == [202, 202, 202]
    assert [r.json()["queue_position"] for r in queued] == [1, 2, 3]
    assert {r.json()["status"] for r in queued} == {"queued"}
    ids = [first["id"], *(r.json()["id"] for r in queued)]
    assert alice.get(f"/v1/threads/{thread['id']}").json()["queued_run_ids"] == ids[1:]
    assert alice.get(f"/v1/runs/{ids[2]}").json()["queue_position"] in (1, 2)
    # Then each starts when the one before it ends, and all complete
    runs = [wait_for_run(alice, run_id, timeout=60) for run_id in ids]
    assert [run["status"] for run in runs] == ["completed"] * 4
    assert [run["answer"] for run in runs] == [f"answer {n}" for n in range(1, 5)]
    for before, after in itertools.pairwise(runs):
        assert after["started_at"] >= before["completed_at"]
    # none ran twice, and the upstream never saw two responses at once on the conversation
    creates = [e for e in upstream.exchanges if e.method == "POST" and e.path == "/v1/responses"]
    assert len(creates) == 4 and all(e.status == 200 for e in creates)
    final = alice.get(f"/v1/threads/{thread['id']}").json()
    assert final["active_run_id"] is None and final["queued_run_ids"] == []
    history = alice.get(f"/v1/threads/{thread['id']}/messages", params={"limit": 100}).json()["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == [f"question {n}" for n in range(1, 5)]


@pytest.mark.usefixtures("one_second_polls")
def test_cancel_ends_a_queued_run_at_once_and_an_active_one_upstream(
    alice: httpx.Client, upstream: EmulatorServer
) -> None:
    upstream.script(Plan.never_finishes(), Plan.message("after the cancel"))
    thread = new_thread(alice, "cancel")
    active = _post_run(alice, thread["id"], "forever").json()
    doomed = _post_run(alice, thread["id"], "never mind", if_busy="enqueue").json()
    survivor = _post_run(alice, thread["id"], "still wanted", if_busy="enqueue").json()
    # A queued run: cancelled at once, out of the line
    cancelled = alice.post(f"/v1/runs/{doomed['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert alice.get(f"/v1/threads/{thread['id']}").json()["queued_run_ids"] == [survivor["id"]]
    # An active run: the cancel is under way, then it ends cancelled upstream too
    stopping = alice.post(f"/v1/runs/{active['id']}/cancel")
    assert stopping.status_code == 202 and stopping.json()["cancel_requested"] is True
    assert wait_for_run(alice, active["id"], timeout=30)["status"] == "cancelled"
    assert any(e.method == "POST" and e.path.endswith("/cancel") for e in upstream.exchanges)
    # and the next in line runs; the cancelled one never started
    assert wait_for_run(alice, survivor["id"], timeout=30)["answer"] == "after the cancel"
    assert alice.get(f"/v1/runs/{doomed['id']}").json()["started_at"] is None
    # cancelling a run that has ended changes nothing
    again = alice.post(f"/v1/runs/{active['id']}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


@pytest.mark.usefixtures("one_second_polls")
def test_the_lock_is_released_after_a_step_crashes(alice: httpx.Client, upstream: EmulatorServer) -> None:
    # Given a run whose Check run fails (the upstream answers its poll with an error no retry fixes)
    upstream.script(
        Plan.message("never seen"),
        Plan.http_error(status=400, code=None, message="broken", on="retrieve", times=1),
        Plan.message("the next one works"),
    )
    thread = new_thread(alice, "crash")
    crashing = _post_run(alice, thread["id"], "crash please").json()
    waiting = _post_run(alice, thread["id"], "and then me", if_busy="enqueue").json()
    assert waiting["queue_position"] == 1
    # Then the crashed run ends failed and the thread passes on to the queued run
    assert wait_for_run(alice, crashing["id"], timeout=30)["status"] == "failed"
    assert wait_for_run(alice, waiting["id"], timeout=30)["answer"] == "the next one works"
    assert alice.get(f"/v1/threads/{thread['id']}").json()["active_run_id"] is None
    assert _post_run(alice, thread["id"], "free again?").status_code == 202
