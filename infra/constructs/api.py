"""The HTTP API: every route behind the JWT authorizer, one Lambda behind every route."""

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
from threadrunner.stores.tables import MESSAGES, RUNS, THREADS

from infra.config import EnvironmentConfig
from infra.constants import (
    MESSAGES_PREFIX,
    OUTPUTS_PREFIX,
    SERVICE_NAME,
    UPLOADS_PREFIX,
    FunctionName,
    OutputName,
)
from infra.constructs.functions import FunctionFactory
from infra.constructs.identity import Identity
from infra.constructs.log_groups import LogGroups
from infra.constructs.storage import Storage

# Named methods, not ANY: an ANY route would also catch the browser's CORS preflight (OPTIONS, sent without a
# token) and the JWT authorizer would refuse it. With named methods API Gateway answers preflights itself.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Per stage, across all routes; a client past it gets 429 before any Lambda runs.
THROTTLE = apigwv2.ThrottleSettings(rate_limit=50, burst_limit=100)
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
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = functions.create(
            FunctionName.api,
            environment={
                "THREADRUNNER_STATE_MACHINE_ARN": state_machine.state_machine_arn,
                # Deletes are handed over (asynchronous invoke): the API never talks to the upstream.
                "THREADRUNNER_DELETE_THREADS_FUNCTION": delete_threads.function_arn,
            },
        )
        storage.grant_tables(self.function, read=(THREADS, RUNS, MESSAGES), write=(THREADS, RUNS, MESSAGES))
        storage.grant_message_bodies(self.function, read=True, write=True)
        storage.grant_presign(self.function)
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[delete_threads.function_arn])
        )
        self._grant_executions(state_machine)
        bucket = Stack.of(self).get_logical_id(storage.bucket.node.default_child)  # type: ignore[arg-type]
        Validations.of(self.function.role).acknowledge(  # type: ignore[arg-type]
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{MESSAGES_PREFIX}*]",
                reason="The API stores and reads large message bodies under messages/<thread id>/.",
            ),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{UPLOADS_PREFIX}*]",
                reason="The API presigns uploads to uploads/<user>/<file id>, a new key per file.",
            ),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{OUTPUTS_PREFIX}*]",
                reason="The API presigns downloads of generated files under outputs/<thread>/<run>/.",
            ),
        )

        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=f"{SERVICE_NAME}-{config.name}",
            create_default_stage=False,
            cors_preflight=apigwv2.CorsPreflightOptions(
                allow_origins=list(config.allowed_origins),
                allow_methods=[apigwv2.CorsHttpMethod(method) for method in METHODS],
                allow_headers=["authorization", "content-type", "idempotency-key"],
                max_age=Duration.hours(1),
            )
            if config.allowed_origins
            else None,
        )
        self.http_api.add_routes(
            path="/v1/{proxy+}",
            methods=[apigwv2.HttpMethod(method) for method in METHODS],
            integration=integrations.HttpLambdaIntegration("ApiIntegration", self.function),
            authorizer=authorizers.HttpJwtAuthorizer(
                "JwtAuthorizer",
                identity.issuer,
                jwt_audience=identity.audience,
                identity_source=["$request.header.Authorization"],
            ),
        )
        self.access_logs = log_groups.create(self, "AccessLogs")
        self.stage = self.http_api.add_stage(
            "DefaultStage",
            stage_name="$default",
            auto_deploy=True,
            throttle=THROTTLE,
            access_log_settings=JsonAccessLogs(self.access_logs),
        )
        CfnOutput(Stack.of(self), OutputName.api_url.value, value=self.http_api.api_endpoint)

    def _grant_executions(self, state_machine: sfn.StateMachine) -> None:
        """Start runs on this state machine; stop and describe only its executions."""
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution"], resources=[state_machine.state_machine_arn]
            )
        )
        executions = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:StopExecution", "states:DescribeExecution"], resources=[executions]
            )
        )
        machine = Stack.of(self).get_logical_id(state_machine.node.default_child)  # type: ignore[arg-type]
        arn = f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<{machine}.Name>:*"
        Validations.of(self.function.role).acknowledge(  # type: ignore[arg-type]
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{arn}]",
                reason="Execution names are run ids, known only at run time; the ARN is limited to this "
                "state machine's executions.",
            ),
        )
