"""Every log group of the stack: the environment's retention and removal policy, and encryption at rest with
one customer managed key (rotated) that CloudWatch Logs of this account and region may use."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.constants import SERVICE_NAME

# What CloudWatch Logs does with a log group's key (AWS docs: "Encrypt log data in CloudWatch Logs").
LOGS_KEY_ACTIONS = ("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*")


class LogGroups(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description=f"{SERVICE_NAME} {config.name} log groups",
            enable_key_rotation=True,
            removal_policy=config.cdk_removal_policy,
        )
        # The regional Logs service, and only for this account's log groups in this region.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisAccountAndRegion",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=list(LOGS_KEY_ACTIONS),
                resources=["*"],  # in a key policy, "*" is this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )

    def create(
        self, scope: Construct, construct_id: str, *, log_group_name: str | None = None
    ) -> logs.LogGroup:
        return logs.LogGroup(
            scope,
            construct_id,
            log_group_name=log_group_name,
            retention=self._config.retention,
            removal_policy=self._config.cdk_removal_policy,
            encryption_key=self.key,
        )
