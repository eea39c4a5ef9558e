"""A create whose outcome is unknown never leads to a second create, on the primary or the fallback.

Start run against real emulators (tests/support/upstream_worlds.py) with fallback on: a create that timed
out, or whose answer a proxy replaced with a 5xx after the upstream took it, or that came back garbled,
fails the run ``UpstreamOutcomeUnknown``; the fallback creates nothing; the primary's circuit opens, so the
next runs start on the fallback without asking it; and the turn is cancelled upstream where it can be found
(Assistants). Finish run then ends the run failed and frees its thread.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from openai import OpenAI
from threadrunner.errors import UpstreamOutcomeUnknown
from threadrunner.models.records import RunRecord
from threadrunner.models.workflow import FinishRunInput, RunProgress, StepError
from threadrunner.workflow import finish_steps

from local.emulator import EmulatorServer, Plan
from tests.support.openai_contract import validate_exchange
from tests.support.upstream_worlds import Fault, World, worlds

pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK's Assistants calls


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[EmulatorServer, EmulatorServer]]:
    with EmulatorServer(port=0) as primary, EmulatorServer(port=0) as fallback:
        yield primary, fallback


@pytest.fixture
def make_world(servers: tuple[EmulatorServer, EmulatorServer]) -> Iterator[Callable[..., World]]:
    with worlds(*servers) as make:
        yield make
    for server in servers:
        for exchange in server.exchanges:
            if exchange.status != 504:  # a scripted hang's gateway answer, off the contract on purpose
                validate_exchange(exchange)


def fails_unknown(world: World, run: RunRecord) -> RunRecord:
    """Start ``run`` expecting UpstreamOutcomeUnknown, then end it as the workflow's Catch does."""
    with pytest.raises(UpstreamOutcomeUnknown) as lost:
        world.start(run)
    cause = json.dumps({"errorType": "UpstreamOutcomeUnknown", "errorMessage": str(lost.value)})
    finish_steps.finish_run(
        FinishRunInput(
            run_id=run.id,
            run=RunProgress(status="queued"),
            error=StepError(Error="UpstreamOutcomeUnknown", Cause=cause),
        ),
        world.ctx,
    )
    return world.ctx.runs.get(run.id)


def primary_creates(world: World) -> list[str]:
    """The primary's model turns, once a hung one has been answered (the emulator logs an exchange when it
    has answered it, here after its hang)."""
    deadline = time.monotonic() + 5
    while not world.creates(world.primary) and time.monotonic() < deadline:
        time.sleep(0.05)
    return world.creates(world.primary)


LOST_CREATES: dict[str, Callable[[World], None]] = {
    "the create timed out": lambda w: w.primary.script(Plan.http_hang(1.0)),
    "a proxy answered 502 after the upstream took the create": lambda w: w.wire.pending.append(
        Fault("/responses", 502, "after")
    ),
    "a proxy answered 504 after the upstream took the create": lambda w: w.wire.pending.append(
        Fault("/responses", 504, "after")
    ),
    "the upstream answered 500 to the create": lambda w: w.primary.script(Plan.http_error(500, None)),
    "the create's answer was garbled": lambda w: w.primary.script(Plan.malformed_json(on="create")),
}


@pytest.mark.parametrize("lost", list(LOST_CREATES))
def test_a_lost_create_fails_the_run_and_is_never_created_again(
    make_world: Callable[..., World], lost: str
) -> None:
    # Given a primary whose create leaves its outcome unknown, and a healthy chat fallback
    world = make_world(timeout=0.5)
    LOST_CREATES[lost](world)
    world.fallback.script(Plan.message("never asked"))
    # When the run starts
    run = world.new_run("What were total sales by region last quarter?")
    ended = fails_unknown(world, run)
    # Then the primary was asked once, the fallback never, and the run stays on its engine
    assert primary_creates(world) == ["/v1/responses"]
    assert world.creates(world.fallback) == []
    assert (ended.engine, ended.fallback_from) == ("responses", None)
    # and it failed saying why, its message kept and its thread free for the next run
    assert ended.status == "failed" and ended.error is not None
    assert ended.error.code == "UpstreamOutcomeUnknown"
    logged, _ = world.ctx.messages.page(run.thread_id, limit=10)
    assert [(m.role, m.content) for m in logged] == [("user", run.message)]
    assert world.ctx.threads.get("alice", run.thread_id).active_run_id is None
    # and the primary's circuit is open: the next runs start on the fallback without asking it
    assert world.breakers.get("dev", "responses") is not None
    world.fallback.reset()
    world.fallback.script(Plan.message("Answered by the fallback."))
    later = world.start(world.new_run("again"))
    assert (later.engine, later.fallback_from) == ("chat", "responses")
    assert world.creates(world.primary) == ["/v1/responses"]


def test_with_fallback_off_a_lost_create_fails_the_run_and_opens_nothing(
    make_world: Callable[..., World],
) -> None:
    world = make_world(fallback_engine="off")
    world.wire.pending.append(Fault("/responses", 502, "after"))
    ended = fails_unknown(world, world.new_run())
    assert ended.error is not None and ended.error.code == "UpstreamOutcomeUnknown"
    assert world.creates(world.primary) == ["/v1/responses"]
    assert world.breakers.get("dev", "responses") is None


def test_a_lost_assistants_run_is_found_and_cancelled(make_world: Callable[..., World]) -> None:
    # Given an Assistants primary that takes the run, whose answer a proxy replaces with a 502
    world = make_world()
    world.primary.script(Plan.never_finishes())
    world.wire.pending.append(Fault("/runs", 502, "after"))
    run = world.new_run(engine="assistants")
    # When the run starts, it fails and nothing is created on the fallback
    ended = fails_unknown(world, run)
    assert ended.error is not None and ended.error.code == "UpstreamOutcomeUnknown"
    assert world.creates(world.fallback) == []
    # Then the upstream run it started (found by our run id in its metadata) was cancelled
    started = [e for e in world.primary.exchanges if e.method == "POST" and e.path.endswith("/runs")]
    assert len(started) == 1
    with OpenAI(base_url=world.primary.base_url, api_key="sk-test", max_retries=0) as client:
        thread_id = started[0].path.split("/")[3]
        (upstream,) = client.beta.threads.runs.list(thread_id).data
    assert upstream.metadata == {"threadrunner_run_id": run.id, "threadrunner_thread_id": run.thread_id}
    assert upstream.status in ("cancelling", "cancelled")
