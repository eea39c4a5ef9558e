"""Authentication and isolation, route by route, from the API's own OpenAPI document.

Every documented operation must have a case here: a new route without one fails
``test_every_documented_route_has_an_isolation_case``. For each route:
- a request the JWT authorizer would refuse (no token, expired, wrong issuer, wrong audience, bad signature)
  is a 401 with a JSON body, before any Lambda runs;
- another user's id of every kind (thread, run, messages, file) is a 404, the same answer as an id that does
  not exist (a DELETE: the same 204 as for nothing to delete, and nothing deleted); lists and usage never
  show another user's data;
- the operators' routes are 403 for everyone else (a group that only looks like the operators' included) and
  allowed for an operator.
OPTIONS, the one method without a token, is tests/e2e/test_abuse.py's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from threadrunner.settings import OperatorSettings

from local.auth import AUDIENCE, ISSUER, issue_token, local_private_key
from local.emulator import EmulatorServer
from local.stack import LocalStack
from tests.e2e.conftest import wait_for_run

Operation = tuple[str, str]  # (method, path template as documented)
MISSING = {
    "thread_id": "thr_00000000000000000000000000",
    "run_id": "run_00000000000000000000000000",
    "file_id": "file_00000000000000000000000000",
    "user_id": "nobody",
}


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 600} | changes


REFUSED_TOKENS: dict[str, Callable[[], str | None]] = {
    "no token": lambda: None,
    "expired": lambda: issue_token("alice", expires_in=-60),
    "wrong issuer": lambda: jwt.encode(_claims(iss="https://evil.example"), local_private_key(), "RS256"),
    "wrong audience": lambda: jwt.encode(_claims(aud="another-api"), local_private_key(), "RS256"),
    "bad signature": lambda: jwt.encode(
        _claims(), rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"
    ),
    "not a bearer token": lambda: "Basic YWxpY2U6c2VjcmV0",
}


@dataclass(frozen=True)
class World:
    """Alice's data, and two others: bob (a user) and an operator."""

    alice: httpx.Client
    bob: httpx.Client
    operator: httpx.Client
    alice_id: str
    thread: dict[str, Any]
    run: dict[str, Any]
    file: dict[str, Any]

    def ids(self) -> dict[str, str]:
        return {
            "thread_id": self.thread["id"],
            "run_id": self.run["id"],
            "file_id": self.file["id"],
            "user_id": self.alice_id,
        }


def _fill(path: str, values: dict[str, str]) -> str:
    return path.format(**values)


def _client(stack: LocalStack, token: str) -> httpx.Client:
    return httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture(scope="module")
def world(local_stack: LocalStack, emulator_server: EmulatorServer) -> Iterator[World]:
    """Alice has a thread with a completed run and a file; made once for the module (nothing left running)."""
    local_stack.abort_executions()
    emulator_server.reset()
    suffix = uuid.uuid4().hex[:8]
    alice_id = f"alice-{suffix}"
    admin_group = OperatorSettings().admin_group
    with (
        _client(local_stack, issue_token(alice_id)) as alice,
        _client(local_stack, issue_token(f"bob-{suffix}")) as bob,
        _client(local_stack, issue_token(f"operator-{suffix}", groups=[admin_group])) as operator,
    ):
        thread = alice.post("/v1/threads", json={"assistant": "data-analyst", "purpose": "private"}).json()
        accepted = alice.post(f"/v1/threads/{thread['id']}/runs", json={"message": "How many customers?"})
        assert accepted.status_code == 202, accepted.text
        run = wait_for_run(alice, accepted.json()["id"])
        assert run["status"] == "completed", run
        declared = alice.post(
            "/v1/files",
            json={
                "thread_id": thread["id"],
                "filename": "a.csv",
                "content_type": "text/csv",
                "size_bytes": 5,
            },
        )
        assert declared.status_code == 201, declared.text
        yield World(alice, bob, operator, alice_id, thread, run, declared.json())


@pytest.fixture(scope="module")
def operations(local_stack: LocalStack) -> list[Operation]:
    with _client(local_stack, issue_token("reader")) as client:
        document = client.get("/v1/openapi.json").json()
    operations = sorted(
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    )
    assert ("GET", "/v1/openapi.json") in operations  # the document documents itself: every route has a case
    return operations


def _not_found_like_missing(world: World, method: str, path: str, body: dict[str, Any] | None = None) -> None:
    """Bob with alice's ids gets exactly what he gets for ids that do not exist: a 404, nothing of hers."""
    theirs = world.bob.request(method, _fill(path, world.ids()), json=body)
    missing = world.bob.request(method, _fill(path, MISSING), json=body)
    assert theirs.status_code == missing.status_code == 404, (theirs.text, missing.text)
    assert theirs.json()["code"] == "not_found"
    text = theirs.text
    for kind, value in world.ids().items():
        text = text.replace(value, MISSING[kind])
    assert text == missing.text  # nothing tells her data from no data


def _deleted_nothing(world: World, path: str) -> None:
    """A DELETE of alice's thing by bob answers as for nothing to delete, and deletes nothing."""
    theirs = world.bob.delete(_fill(path, world.ids()))
    missing = world.bob.delete(_fill(path, MISSING))
    assert theirs.status_code == missing.status_code == 204
    assert world.alice.get(f"/v1/threads/{world.thread['id']}").status_code == 200
    assert world.alice.get(f"/v1/files/{world.file['id']}").status_code == 200


def _shows_none_of_hers(response: httpx.Response, world: World) -> None:
    assert response.status_code in (200, 201), response.text
    for value in (world.thread["id"], world.run["id"], world.file["id"], world.alice_id):
        assert value not in response.text


def _forbidden_then_allowed(world: World, method: str, path: str, allowed: int) -> None:
    url = _fill(path, world.ids())
    refused = world.bob.request(method, url)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden", refused.text
    assert world.operator.request(method, url).status_code == allowed


# What bob (another user) gets on each documented route, given alice's data.
ISOLATION: dict[Operation, Callable[[World], None]] = {
    ("GET", "/v1/threads"): lambda w: _shows_none_of_hers(w.bob.get("/v1/threads", params={"limit": 100}), w),
    ("POST", "/v1/threads"): lambda w: _shows_none_of_hers(
        w.bob.post("/v1/threads", json={"assistant": "data-analyst", "purpose": "private"}), w
    ),
    ("GET", "/v1/threads/{thread_id}"): lambda w: _not_found_like_missing(
        w, "GET", "/v1/threads/{thread_id}"
    ),
    ("DELETE", "/v1/threads/{thread_id}"): lambda w: _deleted_nothing(w, "/v1/threads/{thread_id}"),
    ("GET", "/v1/threads/{thread_id}/messages"): lambda w: _not_found_like_missing(
        w, "GET", "/v1/threads/{thread_id}/messages"
    ),
    ("POST", "/v1/threads/{thread_id}/runs"): lambda w: _not_found_like_missing(
        w, "POST", "/v1/threads/{thread_id}/runs", {"message": "let me in"}
    ),
    ("GET", "/v1/runs/{run_id}"): lambda w: _not_found_like_missing(w, "GET", "/v1/runs/{run_id}"),
    ("GET", "/v1/runs/{run_id}/events"): lambda w: _not_found_like_missing(
        w, "GET", "/v1/runs/{run_id}/events"
    ),
    ("GET", "/v1/threads/{thread_id}/runs"): lambda w: _not_found_like_missing(
        w, "GET", "/v1/threads/{thread_id}/runs"
    ),
    ("GET", "/v1/runs/{run_id}/trace"): lambda w: _not_found_but_an_operator_reads_her_trace(w),
    ("POST", "/v1/runs/{run_id}/cancel"): lambda w: _not_found_like_missing(
        w, "POST", "/v1/runs/{run_id}/cancel"
    ),
    ("POST", "/v1/runs/{run_id}/tool_outputs"): lambda w: _not_found_like_missing(
        w,
        "POST",
        "/v1/runs/{run_id}/tool_outputs",
        {"tool_outputs": [{"tool_call_id": "call_1", "output": "x"}]},
    ),
    ("POST", "/v1/runs/{run_id}/approvals"): lambda w: _not_found_like_missing(
        w, "POST", "/v1/runs/{run_id}/approvals", {"decisions": [{"tool_call_id": "call_1", "approve": True}]}
    ),
    ("GET", "/v1/files"): lambda w: _shows_none_of_hers(w.bob.get("/v1/files"), w),
    ("POST", "/v1/files"): lambda w: _declare_on_her_thread(w),
    ("GET", "/v1/files/{file_id}"): lambda w: _not_found_like_missing(w, "GET", "/v1/files/{file_id}"),
    ("DELETE", "/v1/files/{file_id}"): lambda w: _deleted_nothing(w, "/v1/files/{file_id}"),
    ("GET", "/v1/usage"): lambda w: _usage_is_his_own(w),
    ("DELETE", "/v1/users/me/data"): lambda w: _deleting_his_data_leaves_hers(w),
    ("GET", "/v1/admin/runs"): lambda w: _forbidden_then_allowed(w, "GET", "/v1/admin/runs", 200),
    ("POST", "/v1/admin/runs/{run_id}/cancel"): lambda w: _forbidden_then_allowed(
        w, "POST", "/v1/admin/runs/{run_id}/cancel", 200
    ),
    ("POST", "/v1/admin/users/{user_id}/runs/cancel"): lambda w: _forbidden_then_allowed(
        w, "POST", "/v1/admin/users/{user_id}/runs/cancel", 200
    ),
    ("GET", "/v1/openapi.json"): lambda w: _same_document(w),
}


def _not_found_but_an_operator_reads_her_trace(world: World) -> None:
    """Bob gets a 404 as for nothing; an operator reads what alice reads (once her run's execution ended)."""
    path = "/v1/runs/{run_id}/trace"
    _not_found_like_missing(world, "GET", path)
    deadline = time.monotonic() + 30
    while (hers := world.alice.get(_fill(path, world.ids()))).json()["execution"]["status"] == "RUNNING":
        assert time.monotonic() < deadline, hers.text
        time.sleep(0.05)
    operators = world.operator.get(_fill(path, world.ids()))
    assert hers.status_code == operators.status_code == 200, operators.text
    assert operators.json() == hers.json()


def _same_document(world: World) -> None:
    """The document is the API's, the same for everyone: it holds nothing of a user's."""
    theirs, hers = world.bob.get("/v1/openapi.json"), world.alice.get("/v1/openapi.json")
    assert theirs.status_code == hers.status_code == 200
    assert theirs.json() == hers.json()
    _shows_none_of_hers(theirs, world)


def _declare_on_her_thread(world: World) -> None:
    body = {"filename": "b.csv", "content_type": "text/csv", "size_bytes": 5}
    theirs = world.bob.post("/v1/files", json={**body, "thread_id": world.thread["id"]})
    missing = world.bob.post("/v1/files", json={**body, "thread_id": MISSING["thread_id"]})
    assert theirs.status_code == missing.status_code == 404
    assert theirs.text.replace(world.thread["id"], MISSING["thread_id"]) == missing.text


def _usage_is_his_own(world: World) -> None:
    his = world.bob.get("/v1/usage")
    hers = world.alice.get("/v1/usage")
    assert hers.json()["total"]["runs"] >= 1
    assert his.status_code == 200 and his.json()["total"]["runs"] == 0


def _deleting_his_data_leaves_hers(world: World) -> None:
    assert world.bob.delete("/v1/users/me/data").status_code == 202
    assert world.alice.get(f"/v1/threads/{world.thread['id']}").status_code == 200
    assert world.alice.get(f"/v1/runs/{world.run['id']}").json()["status"] == "completed"
    assert world.alice.get(f"/v1/files/{world.file['id']}").status_code == 200


def test_every_documented_route_has_an_isolation_case(operations: list[Operation]) -> None:
    # A new route must say what another user gets from it; a removed one must leave the table.
    assert sorted(ISOLATION) == operations


@pytest.mark.parametrize("refusal", sorted(REFUSED_TOKENS))
def test_every_route_refuses_a_token_the_authorizer_would_refuse(
    local_stack: LocalStack, operations: list[Operation], refusal: str
) -> None:
    token = REFUSED_TOKENS[refusal]()
    headers = {} if token is None else {"Authorization": token if " " in token else f"Bearer {token}"}
    answers = {}
    with httpx.Client(base_url=local_stack.api_url, timeout=30) as client:
        for method, path in operations:
            response = client.request(method, _fill(path, MISSING), headers=headers, json={})
            answers[f"{method} {path}"] = (response.status_code, response.headers.get("content-type"))
            if response.status_code == 401:
                assert response.json() == {"message": "Unauthorized"}
    assert answers == dict.fromkeys(answers, (401, "application/json"))


def test_another_users_ids_are_not_found_and_operator_routes_are_forbidden(
    world: World, operations: list[Operation]
) -> None:
    # Deleting bob's own data goes last: it must not change what the other cases see.
    ordered = sorted(operations, key=lambda operation: operation == ("DELETE", "/v1/users/me/data"))
    failures = []
    for operation in ordered:
        try:
            ISOLATION[operation](world)
        except AssertionError as failure:
            failures.append(f"{operation}: {failure}")
    assert failures == []


@pytest.mark.parametrize(
    "groups",
    [
        ["ops,threadrunner-admins"],  # one group (Cognito names may hold commas), not two
        ["[threadrunner-admins"],
        ["threadrunner-admins]"],
        ["threadrunner-admins-readonly", "staff"],
    ],
)
def test_a_group_that_only_looks_like_the_operators_grants_nothing(
    world: World, local_stack: LocalStack, groups: list[str]
) -> None:
    # Given a token whose cognito:groups (API Gateway hands it over as "[a b]") names no operators' group
    with _client(local_stack, issue_token(f"mallory-{uuid.uuid4().hex[:8]}", groups=groups)) as mallory:
        # When it asks for the operators' routes, Then each is forbidden, and alice's run is untouched
        for method, path in [
            ("GET", "/v1/admin/runs"),
            ("POST", "/v1/admin/runs/{run_id}/cancel"),
            ("POST", "/v1/admin/users/{user_id}/runs/cancel"),
        ]:
            response = mallory.request(method, _fill(path, world.ids()))
            assert response.status_code == 403 and response.json()["code"] == "forbidden", (groups, path)
    assert world.alice.get(f"/v1/runs/{world.run['id']}").json()["status"] == "completed"
