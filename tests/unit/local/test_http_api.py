"""The HTTP API adapter without a network: API Gateway's v2 event in, the function's response out."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from threadrunner.http.gateway_routes import ROUTES, select
from werkzeug.test import Client, EnvironBuilder
from werkzeug.wrappers import Request

from local.auth import TokenRejectedError
from local.http_api import HttpApi, PathRejectedError, build_event, gateway_path, to_response
from local.lambdas import Invocation, LambdaError

NOW = datetime(2026, 3, 12, 19, 3, 58, 390000, tzinfo=UTC)
CLAIMS = {"sub": "alice", "exp": "1900000000"}


def event_for(**request: Any) -> dict[str, Any]:
    environ = EnvironBuilder(environ_base={"REMOTE_ADDR": "127.0.0.1"}, **request).get_environ()
    path = gateway_path(environ["RAW_URI"].split("?", 1)[0])
    route = select(ROUTES, environ["REQUEST_METHOD"], path)
    assert route is not None
    return build_event(
        Request(environ),
        CLAIMS,
        route=route,
        path=path,
        account_id="123456789012",
        request_id="req-1",
        now=NOW,
    )


def test_a_json_request_becomes_a_v2_event() -> None:
    event = event_for(
        method="POST",
        path="/v1/threads/thr_1/runs",
        query_string="a=1&a=2&empty=",
        headers=[("X-Custom", "one"), ("Cookie", "c1=v1; c2=v2"), ("User-Agent", "tests")],
        json={"message": "hi"},
    )

    assert event["version"] == "2.0"
    # the route starting runs has its own key (its own throttling), and its own path parameter
    assert event["routeKey"] == "POST /v1/threads/{thread_id}/runs"
    assert event["rawPath"] == "/v1/threads/thr_1/runs"
    assert event["rawQueryString"] == "a=1&a=2&empty="
    assert event["queryStringParameters"] == {"a": "1,2", "empty": ""}
    assert event["pathParameters"] == {"thread_id": "thr_1"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["headers"]["x-custom"] == "one"
    assert event["headers"]["content-type"] == "application/json"
    assert all(name == name.lower() for name in event["headers"])
    assert "cookie" not in event["headers"]
    assert json.loads(event["body"]) == {"message": "hi"}
    assert event["isBase64Encoded"] is False
    assert event["requestContext"] == {
        "accountId": "123456789012",
        "apiId": "local",
        "authorizer": {"jwt": {"claims": CLAIMS, "scopes": None}},
        "domainName": "localhost",
        "http": {
            "method": "POST",
            "path": "/v1/threads/thr_1/runs",
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": "tests",
        },
        "requestId": "req-1",
        "routeKey": "POST /v1/threads/{thread_id}/runs",
        "stage": "$default",
        "time": "12/Mar/2026:19:03:58 +0000",
        "timeEpoch": 1773342238390,
    }


def test_a_bodyless_request_has_no_body_query_or_cookies() -> None:
    event = event_for(method="GET", path="/v1/runs/run_1")

    assert "body" not in event
    assert "queryStringParameters" not in event
    assert "cookies" not in event
    assert event["rawQueryString"] == ""
    assert event["isBase64Encoded"] is False


def test_a_binary_body_is_base64_encoded() -> None:
    payload = bytes(range(256))

    event = event_for(method="PUT", path="/v1/files/f", data=payload, content_type="application/octet-stream")

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_a_response_maps_status_headers_cookies_and_base64_body() -> None:
    invocation = Invocation(
        payload={
            "statusCode": 201,
            "headers": {"content-type": "application/octet-stream", "x-count": 2},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": base64.b64encode(b"\x00\x01").decode(),
            "isBase64Encoded": True,
        }
    )

    response = to_response(invocation)

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-count"] == "2"
    assert response.headers.getlist("set-cookie") == ["a=1; Path=/", "b=2"]
    assert response.get_data() == b"\x00\x01"


def test_a_result_without_status_code_is_sent_as_json_200() -> None:
    response = to_response(Invocation(payload={"hello": "world"}))

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert json.loads(response.get_data()) == {"hello": "world"}


def test_a_function_error_is_a_500_without_details() -> None:
    response = to_response(Invocation(error=LambdaError(errorType="KeyError", errorMessage="'secret'")))

    assert response.status_code == 500
    assert json.loads(response.get_data()) == {"message": "Internal Server Error"}


class FakeFunction:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.functions: list[str] = []

    def __call__(self, function: str, event: dict[str, Any]) -> Invocation:
        self.functions.append(function)
        self.events.append(event)
        return Invocation(payload={"statusCode": 204, "body": ""})


def verify_fake(token: str) -> dict[str, str]:
    if token != "good":
        raise TokenRejectedError("bad token")
    return {"sub": "bob"}


@pytest.fixture
def function() -> FakeFunction:
    return FakeFunction()


@pytest.fixture
def client(function: FakeFunction) -> Client:
    api = HttpApi(function, account_id="123456789012", verify=verify_fake)
    return Client(api._app)


@pytest.mark.parametrize("authorization", ["Bearer good", "bearer good", "good"])
def test_an_authorized_request_reaches_the_function_with_the_claims(
    client: Client, function: FakeFunction, authorization: str
) -> None:
    # The JWT authorizer takes the token alone or prefixed with "Bearer "
    response = client.delete("/v1/threads/thr_1", headers={"Authorization": authorization})

    assert response.status_code == 204
    assert response.headers["apigw-requestid"] == function.events[0]["requestContext"]["requestId"]
    assert function.events[0]["requestContext"]["authorizer"]["jwt"]["claims"] == {"sub": "bob"}


@pytest.mark.parametrize("authorization", [None, "", "Bearer bad", "Bearer ", "bad", "Basic good"])
def test_unauthorized_requests_never_reach_the_function(
    client: Client, function: FakeFunction, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = client.get("/v1/threads", headers=headers)

    assert response.status_code == 401
    assert response.json == {"message": "Unauthorized"}
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert function.events == []


@pytest.mark.parametrize("path", ["/", "/v1", "/v1/", "/v2/threads", "/openapi.json"])
def test_paths_outside_the_route_are_not_found(client: Client, function: FakeFunction, path: str) -> None:
    response = client.get(path, headers={"Authorization": "Bearer good"})

    assert response.status_code == 404
    assert response.json == {"message": "Not Found"}
    assert function.events == []


# What live HTTP APIs hand a function as rawPath for a path sent encoded (None: API Gateway answers 400):
# decoded, cut at a ? decoding made, decoded again. REST APIs, ALB and function URLs keep it as sent.
LIVE_HTTP_API_PATHS = {
    "/capture/plain": "/capture/plain",
    "/capture/space%20value": "/capture/space value",
    "/capture/question%3Fvalue": "/capture/question",
    "/capture/percent%25done": None,
    "/capture/hash%23value": "/capture/hash#value",
    "/capture/slash%2Fvalue": "/capture/slash/value",
    "/capture/unicode-%CE%BB-%E4%B8%96%E7%95%8C": "/capture/unicode-λ-世界",
    "/capture/literal%252Fvalue": "/capture/literal/value",
    "/capture/literal%253Fvalue": "/capture/literal?value",
    "/capture/literal%2525value": "/capture/literal%value",
}


@pytest.mark.parametrize("sent", sorted(LIVE_HTTP_API_PATHS))
def test_a_path_is_decoded_as_http_apis_decode_it(sent: str) -> None:
    expected = LIVE_HTTP_API_PATHS[sent]

    if expected is None:
        with pytest.raises(PathRejectedError):
            gateway_path(sent)
    else:
        assert gateway_path(sent) == expected


@pytest.mark.parametrize(
    ("sent", "user_id"),
    [
        ("dora%20smith", "dora smith"),
        ("d%C3%B6rte", "dörte"),
        ("d%25C3%25B6rte", "dörte"),
        ("dora+smith", "dora+smith"),
    ],
)
def test_a_percent_encoded_path_parameter_reaches_the_function_decoded(
    client: Client, function: FakeFunction, sent: str, user_id: str
) -> None:
    # Given an operator cancelling the runs of a user whose id the client had to encode
    client.post(f"/v1/admin/users/{sent}/runs/cancel", headers={"Authorization": "Bearer good"})

    # Then the function gets the path and its parameter decoded, as API Gateway hands them over (the API decodes
    # nothing again: "+" is a plus in a path)
    event = function.events[0]
    assert (
        event["rawPath"]
        == event["requestContext"]["http"]["path"]
        == f"/v1/admin/users/{user_id}/runs/cancel"
    )
    assert event["pathParameters"] == {"proxy": f"admin/users/{user_id}/runs/cancel"}
    assert event["routeKey"] == "ANY /v1/{proxy+}"


def test_a_path_api_gateway_cannot_decode_is_a_400_before_the_function(
    client: Client, function: FakeFunction
) -> None:
    response = client.get("/v1/threads/100%25done", headers={"Authorization": "Bearer good"})

    assert response.status_code == 400
    assert response.json == {"message": "Bad Request"}
    assert function.events == []


@pytest.mark.parametrize("method", ["TRACE", "HEAD", "PUT", "PATCH", "QUERY"])
def test_every_method_reaches_the_function_which_knows_the_paths(
    client: Client, function: FakeFunction, method: str
) -> None:
    response = client.open("/v1/threads", method=method, headers={"Authorization": "Bearer good"})

    assert response.status_code == 204
    assert function.events[0]["requestContext"]["http"]["method"] == method
    assert function.events[0]["routeKey"] == "ANY /v1/{proxy+}"


def test_options_reaches_the_function_without_a_token(client: Client, function: FakeFunction) -> None:
    # Given a browser's CORS preflight, which carries no token
    response = client.options("/v1/threads/thr_1", headers={"Origin": "http://localhost:3000"})

    # Then it reaches the function on its own route, with no claims, as API Gateway sends it
    assert response.status_code == 204
    event = function.events[0]
    assert event["routeKey"] == "OPTIONS /v1/{proxy+}"
    assert "authorizer" not in event["requestContext"]


def test_the_upstream_webhook_goes_without_a_token_to_its_own_function(
    client: Client, function: FakeFunction
) -> None:
    # When the upstream posts a webhook (signed, no JWT)
    response = client.post("/v1/webhooks/openai", data=b'{"type": "response.completed"}')
    # Then it reaches the webhook's Lambda, not the API's, without authorizer claims
    assert response.status_code == 204
    assert function.functions == ["openai_webhook"]
    assert "authorizer" not in function.events[0]["requestContext"]
    # and every other path still reaches the API's Lambda
    client.get("/v1/threads", headers={"Authorization": "Bearer good"})
    assert function.functions == ["openai_webhook", "api"]
