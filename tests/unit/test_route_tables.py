"""Which route a request takes: API Gateway's choice among the deployed routes (threadrunner.http.gateway_routes),
and the API's own paths and their methods, read from its document (threadrunner.http.route_table)."""

from __future__ import annotations

import pytest
from threadrunner.http.gateway_routes import CREATE_FILE, CREATE_RUN, EVERY_METHOD, OPTIONS, ROUTES, select
from threadrunner.http.route_table import RouteTable

DOCUMENT = {
    "paths": {
        "/v1/threads": {"get": {}, "post": {"requestBody": {}}},
        "/v1/threads/{thread_id}": {"get": {}, "delete": {}},
        "/v1/threads/{thread_id}/runs": {"post": {"requestBody": {}}},
        "/v1/users/me/data": {"delete": {}},
        "/v1/admin/users/{user_id}/runs/cancel": {"post": {}},
    }
}


@pytest.mark.parametrize(
    ("method", "path", "route", "parameters"),
    [
        ("POST", "/v1/files", CREATE_FILE, {}),
        ("GET", "/v1/files", EVERY_METHOD, {"proxy": "files"}),  # another method of a route's path
        ("TRACE", "/v1/files", EVERY_METHOD, {"proxy": "files"}),
        ("OPTIONS", "/v1/files", OPTIONS, {"proxy": "files"}),  # the method's own route beats ANY
        ("POST", "/v1/threads/thr_1/runs", CREATE_RUN, {"thread_id": "thr_1"}),
        ("POST", "/v1/threads/thr_1/runs/x", EVERY_METHOD, {"proxy": "threads/thr_1/runs/x"}),
        ("GET", "/v1/threads/a b\nc", EVERY_METHOD, {"proxy": "threads/a b\nc"}),
    ],
)
def test_api_gateway_picks_the_most_specific_route(
    method: str, path: str, route: object, parameters: dict[str, str]
) -> None:
    selected = select(ROUTES, method, path)

    assert selected is not None
    assert selected.route == route
    assert selected.path_parameters == parameters


@pytest.mark.parametrize("path", ["/", "/v1", "/v1/", "/v2/threads", "/openapi.json"])
def test_a_path_outside_the_routes_takes_none(path: str) -> None:
    assert select(ROUTES, "GET", path) is None


def test_only_preflights_the_docs_page_and_the_signed_webhooks_go_without_the_authorizer() -> None:
    assert [route.key for route in ROUTES if not route.authorized] == [
        "OPTIONS /v1/{proxy+}",
        "GET /v1/docs",
        "POST /v1/webhooks/openai",
    ]
    # the webhooks and the Assistants-compatible API to their own Lambdas, everything else to the API's
    assert {route.key: route.function for route in ROUTES if route.function != "api"} == {
        "POST /v1/webhooks/openai": "openai_webhook",
        "ANY /compat/v1/{proxy+}": "compat_api",
    }


def test_a_paths_methods_and_allow_come_from_the_document() -> None:
    table = RouteTable(DOCUMENT)

    thread = table.find("/v1/threads/thr_1")
    assert thread is not None and thread.template == "/v1/threads/{thread_id}"
    assert thread.allow == "DELETE, GET, OPTIONS"
    # a literal path is not taken for a parameter's, whatever the order of the document
    assert table.find("/v1/users/me/data").template == "/v1/users/me/data"  # type: ignore[union-attr]
    assert table.find("/v1/threads/thr_1/runs/x") is None
    assert table.find("/v1/nothing") is None


def test_which_methods_read_a_body() -> None:
    table = RouteTable(DOCUMENT)

    assert table.reads_body("POST", "/v1/threads")
    assert table.reads_body("post", "/v1/threads/thr_1/runs")
    assert not table.reads_body("GET", "/v1/threads")
    assert not table.reads_body("POST", "/v1/admin/users/bob/runs/cancel")
    assert not table.reads_body("POST", "/v1/nothing")


@pytest.mark.parametrize(
    ("user_id", "unroutable"),
    [
        ("dora smith", None),
        ("dörte", None),
        ("100%", None),
        ("a#b", "user_id"),
        ('a"b', "user_id"),
        ("\x84", "user_id"),
    ],
)
def test_a_parameter_powertools_does_not_route_is_named(user_id: str, unroutable: str | None) -> None:
    path = RouteTable(DOCUMENT).find(f"/v1/admin/users/{user_id}/runs/cancel")

    assert path is not None
    assert path.unroutable_parameter(f"/v1/admin/users/{user_id}/runs/cancel") == unroutable
