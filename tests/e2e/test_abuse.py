"""Nothing a client can send makes the API answer 5xx: every route, from the API's own document, gets each body
and token that once did, and answers a 4xx with the usual JSON error body. A method a path lacks is a 405
naming the path's methods; OPTIONS answers them without a token."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from threadrunner.http.json_bodies import MAX_DEPTH, MAX_INT_DIGITS

from local.auth import issue_token
from local.emulator import EmulatorServer
from local.stack import LocalStack

Operation = tuple[str, str, bool]  # method, path with its parameters filled in, whether it reads a body
IDS = {
    "thread_id": "thr_00000000000000000000000000",
    "run_id": "run_00000000000000000000000000",
    "file_id": "file_00000000000000000000000000",
    "user_id": "nobody",
}
# Each body that answered 500 (the issue list), as (content type, bytes) and what a route that reads it answers.
BODIES: dict[str, tuple[str, bytes, int]] = {
    "text/plain": ("text/plain", b'{"assistant": "data-analyst"}', 415),
    "XML": ("application/xml", b"<thread><assistant>data-analyst</assistant></thread>", 415),
    "a form": ("application/x-www-form-urlencoded", b"assistant=data-analyst&purpose=abuse", 415),
    "multipart without a boundary": ("multipart/form-data", b"--x\r\n\r\n--x--", 415),
    "JSON nested 1,000 levels": ("application/json", b"[" * 1000 + b"]" * 1000, 422),
    "JSON objects nested 5,000 levels": ("application/json", b'{"a":' * 5000 + b"1" + b"}" * 5000, 422),
    "an integer of 5,000 digits": ("application/json", b'{"size_bytes": ' + b"9" * 5000 + b"}", 422),
    "NaN": ("application/json", b'{"size_bytes": NaN}', 422),
}


@pytest.fixture(scope="module")
def operations(local_stack: LocalStack) -> list[Operation]:
    with _client(local_stack, issue_token("abuse-reader")) as client:
        document = client.get("/v1/openapi.json").json()
    return sorted(
        (method.upper(), path.format(**IDS), "requestBody" in operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    )


@pytest.fixture
def abuser(local_stack: LocalStack, upstream: EmulatorServer) -> Iterator[httpx.Client]:
    """An operator (the operators' routes then read what they are sent) of their own."""
    token = issue_token(f"abuser-{uuid.uuid4().hex[:8]}", groups=["threadrunner-admins"])
    with _client(local_stack, token) as client:
        yield client


def _client(stack: LocalStack, token: str) -> httpx.Client:
    return httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _valid_body(path: str) -> dict[str, Any]:
    if path.endswith("/tool_outputs"):
        return {"tool_outputs": [{"tool_call_id": "call_1", "output": "42"}]}
    if path.endswith("/approvals"):
        return {"decisions": [{"tool_call_id": "call_1", "approve": True}]}
    if path.endswith("/runs"):
        return {"message": "hi"}
    if path == "/v1/files":
        return {
            "thread_id": IDS["thread_id"],
            "filename": "a.csv",
            "content_type": "text/csv",
            "size_bytes": 5,
        }
    return {"assistant": "data-analyst"}


def _is_error_body(response: httpx.Response) -> bool:
    body = response.json()
    return response.headers["content-type"] == "application/json" and {"code", "message"} <= set(body)


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_every_route_answers_each_abusive_body_with_a_4xx(
    abuser: httpx.Client, operations: list[Operation], kind: str
) -> None:
    content_type, body, refused = BODIES[kind]
    answers = {}
    # When every route is sent the body
    for method, path, reads_body in operations:
        response = abuser.request(method, path, content=body, headers={"content-type": content_type})
        answers[f"{method} {path}"] = response.status_code
        # Then a route that reads a body refuses it, naming why; one that reads none answers as without it
        assert response.status_code < 500, (method, path, response.text)
        if reads_body:
            assert response.status_code == refused, (method, path, response.text)
            assert _is_error_body(response), response.text
            if refused == 422:
                assert response.json()["field"] == "body"
    assert len(answers) >= 15


def test_the_bounds_are_the_documented_ones(abuser: httpx.Client) -> None:
    # At the bounds a body is read (and its fields checked); one past them it is not
    deep_enough = {
        "assistant": "data-analyst",
        "x": json.loads("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)),
    }
    too_deep = {"assistant": "data-analyst", "x": json.loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)}
    assert abuser.post("/v1/threads", json=deep_enough).json()["field"] == "x"  # an unknown field, read
    assert abuser.post("/v1/threads", json=too_deep).json()["field"] == "body"
    long_enough = b'{"assistant": "data-analyst", "max_age_hours": 1' + b"0" * (MAX_INT_DIGITS - 1) + b"}"
    too_long = b'{"assistant": "data-analyst", "max_age_hours": 1' + b"0" * MAX_INT_DIGITS + b"}"
    headers = {"content-type": "application/json"}
    assert abuser.post("/v1/threads", content=long_enough, headers=headers).json()["field"] == "max_age_hours"
    assert abuser.post("/v1/threads", content=too_long, headers=headers).json()["field"] == "body"
    # and JSON with a charset parameter, or sent without a Content-Type, is JSON
    charset = {"content-type": "application/json; charset=utf-8"}
    body = b'{"assistant": "data-analyst", "purpose": "charset"}'
    assert abuser.post("/v1/threads", content=body, headers=charset).status_code == 201
    bare = abuser.build_request("POST", "/v1/threads", content=b'{"assistant": "data-analyst"}')
    assert "content-type" not in bare.headers
    assert abuser.send(bare).status_code in (200, 201)


@pytest.mark.parametrize("subject", ["x" * 257, "é" * 1025, "u" * 3000])
def test_a_token_whose_subject_is_longer_than_a_user_id_is_refused_on_every_route(
    local_stack: LocalStack, upstream: EmulatorServer, operations: list[Operation], subject: str
) -> None:
    # Given a valid token whose subject is longer than 256 characters (3,000 bytes is past DynamoDB's keys)
    with _client(local_stack, issue_token(subject, groups=["threadrunner-admins"])) as client:
        for method, path, reads_body in operations:
            response = client.request(method, path, json=_valid_body(path) if reads_body else None)
            # Then every route answers 401 naming why, and nothing is created for it
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["code"] == "unauthorized"
            assert "256" in response.json()["message"]
    with _client(local_stack, issue_token("x" * 256)) as client:
        assert client.get("/v1/threads").status_code == 200  # at the limit, a user


@pytest.mark.parametrize("method", ["TRACE", "PUT", "PATCH", "HEAD", "DELETE", "POST", "GET"])
def test_a_method_a_path_lacks_is_a_405_naming_the_paths_methods(
    abuser: httpx.Client, operations: list[Operation], method: str
) -> None:
    methods: dict[str, set[str]] = {}
    for operation_method, path, _ in operations:
        methods.setdefault(path, set()).add(operation_method)
    for path, allowed in methods.items():
        if method in allowed:
            continue
        response = abuser.request(method, path)
        assert response.status_code == 405, (method, path, response.text)
        assert response.headers["allow"] == ", ".join(sorted(allowed | {"OPTIONS"}))
        if method != "HEAD":
            assert response.json()["code"] == "method_not_allowed"


def test_options_answers_a_paths_methods_without_a_token(
    local_stack: LocalStack, upstream: EmulatorServer, operations: list[Operation]
) -> None:
    methods: dict[str, set[str]] = {}
    for method, path, _ in operations:
        methods.setdefault(path, set()).add(method)
    for path, allowed in methods.items():
        response = httpx.options(f"{local_stack.api_url}{path}")  # no token, as a browser's preflight
        assert response.status_code == 204, (path, response.text)
        assert response.headers["allow"] == ", ".join(sorted(allowed | {"OPTIONS"}))
        assert response.content == b""
    assert httpx.options(f"{local_stack.api_url}/v1/nothing-here").status_code == 404
