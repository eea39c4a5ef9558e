"""The HTTP API: every path and method to the api Lambda, behind the JWT authorizer but OPTIONS and the docs page
(routes: threadrunner.http.gateway_routes)."""

from __future__ import annotations

import json

import jsii
from aws_cdk import Acknowledgment, ArnFormat, CfnOutput, Duration, Stack, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from threadrunner.http.gateway_routes import (
    CREATE_FILE,
    CREATE_RUN,
    DOCS,
    OPENAI_WEBHOOK,
    OPTIONS,
    ROUTES,
    GatewayRoute,
)
from threadrunner.stores.tables import IDEMPOTENCY, MESSAGES, RUNS, THREADS

from infra.config import EnvironmentConfig, ThrottleConfig
from infra.constants import (
    SERVICE_NAME,
    FunctionName,
    OutputName,
)
from infra.constructs.functions import FunctionFactory
from infra.constructs.identity import Identity
from infra.constructs.log_groups import LogGroups
from infra.constructs.storage import Storage

# Why a route goes without the JWT authorizer (cdk-nag's APIG4): every such route of gateway_routes needs one.
_WITHOUT_TOKEN = {
    OPTIONS: "OPTIONS carries no token (a browser's CORS preflight has none); the API Lambda answers it from "
    "its route table alone (204 and Allow), reading no data.",
    DOCS: "The API's interactive documentation (Swagger UI): a browser opening the page sends no token; the "
    "Lambda answers it from the app's OpenAPI document alone, reading no data.",
    OPENAI_WEBHOOK: "The upstream's webhooks carry no JWT: they are signed (Standard Webhooks), and the "
    "openai_webhook Lambda refuses a bad signature or a stale timestamp (401) before reading anything.",
}
# The methods a browser may use across origins (CORS). Which routes exist: threadrunner.http.gateway_routes.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# One JSON object per request (HTTP API context variables), so Logs Insights can query the fields.
ACCESS_LOG_FORMAT = apigateway.AccessLogFormat.custom(
    json.dumps(
        {
            "requestId": "$context.requestId",
            "ip": "$context.identity.sourceIp",
            "requestTime": "$context.requestTime",
            "routeKey": "$context.routeKey",
            "path": "$context.path",
            "status": "$context.status",
            "protocol": "$context.protocol",
            "responseLength": "$context.responseLength",
            "responseLatency": "$context.responseLatency",
            "integrationLatency": "$context.integration.latency",
            "integrationError": "$context.integrationErrorMessage",
            "authorizerError": "$context.authorizer.error",
            "user": "$context.authorizer.claims.sub",
        }
    )
)


@jsii.implements(apigwv2.IAccessLogSettings)
class JsonAccessLogs:
    """Access logs in ACCESS_LOG_FORMAT to a log group (a jsii interface, so a class rather than a struct)."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat:
        return ACCESS_LOG_FORMAT


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        storage: Storage,
        functions: FunctionFactory,
        identity: Identity,
        log_groups: LogGroups,
        state_machine: sfn.StateMachine,
        delete_threads: lambda_.IFunction,
        webhook: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        starts_runs = {
            "THREADRUNNER_STATE_MACHINE_ARN": state_machine.state_machine_arn,
            # Deletes are handed over (asynchronous invoke): the API never talks to the upstream.
            "THREADRUNNER_DELETE_THREADS_FUNCTION": delete_threads.function_arn,
            **(
                {"THREADRUNNER_RUNS_PER_MINUTE": str(config.runs_per_minute)}
                if config.runs_per_minute is not None
                else {}
            ),
        }
        self.function = functions.create(
            FunctionName.api,
            environment={
                **starts_runs,
                # Only the API keeps Idempotency-Key records.
                "THREADRUNNER_IDEMPOTENCY_TABLE": storage.idempotency_table.table_name,
                "THREADRUNNER_IDEMPOTENCY_EXPIRES_SECONDS": str(config.idempotency_expires_hours * 3600),
            },
        )
        storage.grant_tables(self.function, read=(IDEMPOTENCY,), write=(IDEMPOTENCY,))
        storage.grant_presign(self.function)
        # The Assistants-compatible API (threadrunner/compat) over the same stores and workflow.
        self.compat_function = functions.create(FunctionName.compat_api, environment=starts_runs)
        storage.grant_compat_files(self.compat_function)
        for function in (self.function, self.compat_function):
            tables = (THREADS, RUNS, MESSAGES)
            storage.grant_tables(function, read=tables, write=tables)
            storage.grant_message_bodies(function, read=True, write=True)
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"], resources=[delete_threads.function_arn]
                )
            )
            self._grant_executions(function, state_machine)

        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=f"{SERVICE_NAME}-{config.name}",
            create_default_stage=False,
            cors_preflight=apigwv2.CorsPreflightOptions(
                allow_origins=list(config.allowed_origins),
                allow_methods=[apigwv2.CorsHttpMethod(method) for method in METHODS],
                allow_headers=["authorization", "content-type", "idempotency-key"],
                # Browsers show scripts only these response headers beyond the safelisted ones.
                expose_headers=["retry-after", "idempotent-replayed"],
                max_age=Duration.hours(1),
            )
            if config.allowed_origins
            else None,
        )
        integrations_by_function = {
            FunctionName.api.value: integrations.HttpLambdaIntegration("ApiIntegration", self.function),
            FunctionName.compat_api.value: integrations.HttpLambdaIntegration(
                "CompatApiIntegration", self.compat_function
            ),
            FunctionName.openai_webhook.value: integrations.HttpLambdaIntegration(
                "OpenaiWebhookIntegration", webhook
            ),
        }
        authorizer = authorizers.HttpJwtAuthorizer(
            "JwtAuthorizer",
            identity.issuer,
            jwt_audience=identity.audience,
            identity_source=["$request.header.Authorization"],
        )
        routes = [
            self._add_route(route, integrations_by_function[route.function], authorizer) for route in ROUTES
        ]
        self.access_logs = log_groups.create(self, "AccessLogs")
        self.stage = self.http_api.add_stage(
            "DefaultStage",
            stage_name="$default",
            auto_deploy=True,
            throttle=_throttle(config.api_throttling.default),
            access_log_settings=JsonAccessLogs(self.access_logs),
        )
        self._throttle_routes(config, routes)
        CfnOutput(Stack.of(self), OutputName.api_url.value, value=self.http_api.api_endpoint)

    def _add_route(
        self,
        route: GatewayRoute,
        integration: integrations.HttpLambdaIntegration,
        authorizer: authorizers.HttpJwtAuthorizer,
    ) -> apigwv2.HttpRoute:
        (added,) = self.http_api.add_routes(
            path=route.path,
            methods=[apigwv2.HttpMethod(route.method)],
            integration=integration,
            authorizer=authorizer if route.authorized else apigwv2.HttpNoneAuthorizer(),
        )
        if not route.authorized:
            reason = _WITHOUT_TOKEN[route]
            Validations.of(added).acknowledge(Acknowledgment(id="AwsSolutions-APIG4", reason=reason))
        return added

    def _throttle_routes(self, config: EnvironmentConfig, routes: list[apigwv2.HttpRoute]) -> None:
        """Route settings (the L2 stage has only the default): stricter limits where a request starts work."""
        limits = {
            CREATE_RUN: config.api_throttling.create_run,
            CREATE_FILE: config.api_throttling.create_file,
        }
        cfn_stage: apigwv2.CfnStage = self.stage.node.default_child  # type: ignore[assignment]
        cfn_stage.add_property_override(
            "RouteSettings",
            {
                route.key: {
                    "ThrottlingRateLimit": limit.rate_limit,
                    "ThrottlingBurstLimit": limit.burst_limit,
                }
                for route, limit in limits.items()
            },
        )
        for route in routes:  # route settings name routes that must exist first
            self.stage.node.add_dependency(route)

    def _grant_executions(self, function: lambda_.Function, state_machine: sfn.StateMachine) -> None:
        """Start runs on this state machine; stop, describe and read the history of only its executions."""
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution"], resources=[state_machine.state_machine_arn]
            )
        )
        # Client tool outputs and approvals resume a run waiting for the application (its task token).
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:SendTaskSuccess", "states:SendTaskFailure"],
                resources=[state_machine.state_machine_arn],
            )
        )
        executions = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        # GetExecutionHistory: GET /v1/runs/{run_id}/trace (services/run_history.py).
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:StopExecution", "states:DescribeExecution", "states:GetExecutionHistory"],
                resources=[executions],
            )
        )
        machine = Stack.of(self).get_logical_id(state_machine.node.default_child)  # type: ignore[arg-type]
        arn = f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<{machine}.Name>:*"
        Validations.of(function.role).acknowledge(  # type: ignore[arg-type]
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{arn}]",
                reason="Execution names are run ids, known only at run time; the ARN is limited to this "
                "state machine's executions.",
            ),
        )


def _throttle(limit: ThrottleConfig) -> apigwv2.ThrottleSettings:
    return apigwv2.ThrottleSettings(rate_limit=limit.rate_limit, burst_limit=limit.burst_limit)
