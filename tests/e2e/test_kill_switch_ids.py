"""The kill switch finds a user whose id a URL must encode: the path is decoded once, by API Gateway (as the
local HTTP API does it), and the API takes the parameter as it is handed over."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from threadrunner.settings import OperatorSettings

from local.auth import issue_token
from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.e2e.conftest import new_thread, wait_for_run

SLOW_POLLS = {"THREADRUNNER_POLL_FIRST_SECONDS": "1", "THREADRUNNER_POLL_MAX_SECONDS": "1"}


@pytest.fixture
def operator(local_stack: LocalStack) -> Iterator[httpx.Client]:
    token = issue_token(f"operator-{uuid.uuid4().hex[:8]}", groups=[OperatorSettings().admin_group])
    with httpx.Client(base_url=local_stack.api_url, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


@pytest.mark.parametrize(
    ("user", "encoded"),
    [("dora smith", "dora%20smith"), ("dörte", "d%C3%B6rte"), ("a+b", "a%2Bb")],
)
def test_an_operator_cancels_the_runs_of_a_user_whose_id_is_percent_encoded(
    client_for: Callable[[str], httpx.Client],
    upstream: EmulatorServer,
    configure: Callable[..., None],
    operator: httpx.Client,
    user: str,
    encoded: str,
) -> None:
    configure(**SLOW_POLLS)
    upstream.script(Plan.never_finishes())
    suffix = uuid.uuid4().hex[:6]
    user_id, path_id = f"{user} {suffix}", f"{encoded}%20{suffix}"
    # Given the user's active run, and one queued behind it
    client = client_for(user_id)
    thread = new_thread(client, "kill")
    active = client.post(f"/v1/threads/{thread['id']}/runs", json={"message": "forever"}).json()
    queued = client.post(
        f"/v1/threads/{thread['id']}/runs", json={"message": "next", "if_busy": "enqueue"}
    ).json()

    # When an operator cancels the user's runs, the id encoded in the path as a URL must
    cancelled = operator.post(f"/v1/admin/users/{path_id}/runs/cancel")

    # Then both are cancelled: the queued one at once, the active one through Check run
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {"user_id": user_id, "ended": [queued["id"]], "cancelling": [active["id"]]}
    assert wait_for_run(client, active["id"], timeout=30)["status"] == "cancelled"
    # and the list of the user's active runs (a query, decoded the same way) is empty again
    assert operator.get("/v1/admin/runs", params={"user_id": user_id}).json()["runs"] == []
