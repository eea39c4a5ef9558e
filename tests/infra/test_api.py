"""The HTTP API: every path and method to the api Lambda, JWT on every route but OPTIONS, CORS, access logs and
throttling."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from typing import Any

import pytest
from threadrunner.http.gateway_routes import ROUTES, GatewayRoute, select

from infra.constants import REPO_ROOT, FunctionName
from tests.infra.synth import Synthesized, render, synthesize_with


def test_every_route_goes_to_the_api_lambda_behind_the_jwt_authorizer_but_options_docs_and_webhooks(
    dev: Synthesized,
) -> None:
    routes = dev.resources("AWS::ApiGatewayV2::Route")
    authorizer_id, _ = dev.only("AWS::ApiGatewayV2::Authorizer")
    integration_id, _ = dev.integration(FunctionName.api)

    # One table of routes (threadrunner.http.gateway_routes), the one the local HTTP API routes by too
    assert sorted(route["Properties"]["RouteKey"] for route in routes.values()) == sorted(
        r.key for r in ROUTES
    )
    # Exactly three go without a token: a browser's CORS preflight carries none (the Lambda answers it from its
    # route table), nor does a browser opening the docs page (Swagger UI over the API's document), nor the
    # upstream's webhooks (signed; their own Lambda checks the signature)
    webhook = "POST /v1/webhooks/openai"
    assert {r.key for r in ROUTES if not r.authorized} == {"OPTIONS /v1/{proxy+}", "GET /v1/docs", webhook}
    webhook_integration, _ = dev.integration(FunctionName.openai_webhook)
    compat = "ANY /compat/v1/{proxy+}"  # the Assistants-compatible API: its own Lambda, the same JWT
    compat_integration, _ = dev.integration(FunctionName.compat_api)
    own = {webhook: webhook_integration, compat: compat_integration}
    for route in routes.values():
        properties = route["Properties"]
        target = own.get(properties["RouteKey"], integration_id)
        assert properties["Target"] == {"Fn::Join": ["", ["integrations/", {"Ref": target}]]}
        if properties["RouteKey"] in {"OPTIONS /v1/{proxy+}", "GET /v1/docs", webhook}:
            assert properties["AuthorizationType"] == "NONE"
        else:
            assert properties["AuthorizationType"] == "JWT"
            assert properties["AuthorizerId"] == {"Ref": authorizer_id}


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"])
def test_every_method_of_every_api_path_reaches_the_lambda_which_answers_405(
    dev: Synthesized, method: str
) -> None:
    # Given the deployed route keys and every path of the API's own document (a new path needs no new route)
    routes = dev.resources("AWS::ApiGatewayV2::Route")
    deployed = tuple(_gateway_route(route["Properties"]) for route in routes.values())
    paths = api_paths()
    assert {"/v1/threads", "/v1/threads/{thread_id}/runs", "/v1/admin/runs"} <= set(paths)
    # When API Gateway picks the route for each method of each path (with parameters filled in)
    unrouted = [path for path in paths if select(deployed, method, _example(path)) is None]
    # Then every one reaches the API Lambda (none is API Gateway's own 404), so a method the path lacks is the
    # Lambda's 405 with Allow; and only OPTIONS goes without the authorizer
    assert unrouted == []
    authorizers = {select(deployed, method, _example(path)).route.authorized for path in paths}  # type: ignore[union-attr]
    assert authorizers == {method != "OPTIONS"}
    # And the docs page alone, GET, goes without the authorizer; any other method of it takes the JWT route
    docs = select(deployed, method, "/v1/docs")
    assert docs is not None and docs.route.authorized == (method not in ("GET", "OPTIONS"))


def api_paths() -> list[str]:
    """The paths of the API's OpenAPI document, from the api function's own app."""
    spec = importlib.util.spec_from_file_location(
        "api_handler_for_routes", REPO_ROOT / "functions" / "api" / "handler.py"
    )
    assert spec is not None and spec.loader is not None
    handler = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = handler  # pydantic resolves annotations through it
    spec.loader.exec_module(handler)
    return sorted(json.loads(handler.app.get_openapi_json_schema())["paths"])


def _example(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def _gateway_route(properties: dict[str, Any]) -> GatewayRoute:
    method, path = properties["RouteKey"].split(" ", 1)
    return GatewayRoute(method, path, authorized=properties["AuthorizationType"] == "JWT")


def test_the_route_goes_to_the_api_lambda(dev: Synthesized) -> None:
    _, integration = dev.integration(FunctionName.api)
    api_id, _ = dev.function(FunctionName.api)

    assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    assert render(integration["Properties"]["IntegrationUri"]) == f"<{api_id}.Arn>"
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"


def test_without_an_issuer_the_stack_trusts_its_own_user_pool(dev: Synthesized) -> None:
    pool_id, _ = dev.only("AWS::Cognito::UserPool")
    client_id, _ = dev.only("AWS::Cognito::UserPoolClient")
    _, authorizer = dev.only("AWS::ApiGatewayV2::Authorizer")

    configuration = authorizer["Properties"]["JwtConfiguration"]
    assert authorizer["Properties"]["AuthorizerType"] == "JWT"
    assert authorizer["Properties"]["IdentitySource"] == ["$request.header.Authorization"]
    assert render(configuration["Issuer"]) == f"<{pool_id}.ProviderURL>"
    assert configuration["Audience"] == [{"Ref": client_id}]
    assert {"UserPoolId", "UserPoolClientId"} <= set(dev.template["Outputs"])


def test_an_environment_with_its_own_issuer_gets_no_user_pool() -> None:
    synthesized = synthesize_with(
        "staging", jwt={"issuer": "https://login.example.com/", "audience": ["threadrunner-api"]}
    )

    _, authorizer = synthesized.only("AWS::ApiGatewayV2::Authorizer")
    assert authorizer["Properties"]["JwtConfiguration"] == {
        "Issuer": "https://login.example.com",
        "Audience": ["threadrunner-api"],
    }
    assert synthesized.resources("AWS::Cognito::UserPool") == {}
    assert "UserPoolId" not in synthesized.template["Outputs"]


def test_cors_allows_the_environments_origins(dev: Synthesized) -> None:
    _, api = dev.only("AWS::ApiGatewayV2::Api")

    cors = api["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == ["http://localhost:3000", "http://127.0.0.1:8765"]
    assert {"authorization", "idempotency-key"} <= set(cors["AllowHeaders"])
    # a browser client may read when to retry, and whether an answer is a repeat
    assert sorted(cors["ExposeHeaders"]) == ["idempotent-replayed", "retry-after"]
    assert sorted(cors["AllowMethods"]) == ["DELETE", "GET", "PATCH", "POST", "PUT"]


def test_the_default_stage_is_throttled_and_logs_every_request(dev: Synthesized) -> None:
    _, stage = dev.only("AWS::ApiGatewayV2::Stage")

    properties = stage["Properties"]
    assert properties["StageName"] == "$default"
    assert properties["AutoDeploy"] is True
    assert properties["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert properties["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0
    assert render(properties["AccessLogSettings"]["DestinationArn"]).endswith(".Arn>")
    assert "$context.requestId" in properties["AccessLogSettings"]["Format"]


def test_starting_a_run_or_an_upload_is_throttled_more_strictly_than_the_rest(dev: Synthesized) -> None:
    stage_id, stage = dev.only("AWS::ApiGatewayV2::Stage")
    routes = dev.resources("AWS::ApiGatewayV2::Route")
    integration_id, _ = dev.integration(FunctionName.api)

    default = stage["Properties"]["DefaultRouteSettings"]
    per_route = stage["Properties"]["RouteSettings"]
    # Both routes get cdk.json's limits, stricter than the stage's default
    assert set(per_route) == {"POST /v1/threads/{thread_id}/runs", "POST /v1/files"}
    for settings in per_route.values():
        assert 0 < settings["ThrottlingRateLimit"] < default["ThrottlingRateLimit"]
        assert 0 < settings["ThrottlingBurstLimit"] < default["ThrottlingBurstLimit"]
    # each exists as a route of its own (route settings only apply to a route key that exists), deployed first
    keys = {route["Properties"]["RouteKey"]: route_id for route_id, route in routes.items()}
    for route_key in per_route:
        assert routes[keys[route_key]]["Properties"]["Target"] == {
            "Fn::Join": ["", ["integrations/", {"Ref": integration_id}]]
        }
        assert keys[route_key] in dev.template["Resources"][stage_id]["DependsOn"]


def test_throttling_follows_the_environment() -> None:
    synthesized = synthesize_with(
        "staging",
        api_throttling={
            "default": {"rate_limit": 40, "burst_limit": 80},
            "create_run": {"rate_limit": 2, "burst_limit": 4},
            "create_file": {"rate_limit": 3, "burst_limit": 6},
        },
    )

    _, stage = synthesized.only("AWS::ApiGatewayV2::Stage")
    assert stage["Properties"]["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": 80,
        "ThrottlingRateLimit": 40,
    }
    assert stage["Properties"]["RouteSettings"] == {
        "POST /v1/threads/{thread_id}/runs": {"ThrottlingRateLimit": 2, "ThrottlingBurstLimit": 4},
        "POST /v1/files": {"ThrottlingRateLimit": 3, "ThrottlingBurstLimit": 6},
    }


def test_the_api_gets_its_per_user_limits_and_the_idempotency_table(dev: Synthesized) -> None:
    _, function = dev.function(FunctionName.api)
    table = dev.stack.resolve(dev.stack.storage.idempotency_table.table_name)

    environment = function["Properties"]["Environment"]["Variables"]
    assert environment["THREADRUNNER_RUNS_PER_MINUTE"] == "30"
    assert environment["THREADRUNNER_IDEMPOTENCY_EXPIRES_SECONDS"] == str(24 * 3600)
    assert environment["THREADRUNNER_IDEMPOTENCY_TABLE"] == table


def test_outputs_give_operators_what_they_need(dev: Synthesized) -> None:
    outputs = dev.template["Outputs"]

    assert {"ApiUrl", "StateMachineArn", "SecretName"} <= set(outputs)
    assert outputs["SecretName"]["Value"] == "threadrunner/dev/openai-api-key"
    assert "put-secret-value" in outputs["SecretName"]["Description"]
