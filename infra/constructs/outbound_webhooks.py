"""Outbound run webhooks: the delivery queue the fan-out fills (one message per event and subscription), the
deliver_run_webhook Lambda that signs and POSTs each (threadrunner.outbound_webhooks), retries with a growing
backoff, and the dead-letter queue with its alarm for deliveries that never got a 2xx.

Deployed in every environment; with no ``webhooks`` in cdk.json nothing is ever enqueued."""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import Acknowledgment, ArnFormat, Duration, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import WebhookSubscriptionConfig
from infra.constants import FunctionName
from infra.constructs.dead_letters import dead_letters
from infra.constructs.functions import STEP_TIMEOUT, FunctionFactory

# Attempts per delivery (SQS maxReceiveCount): with the backoff of threadrunner.outbound_webhooks (30 s, 2 min,
# 8 min, 32 min, then 2 h) the last is some seven hours after the first.
MAX_ATTEMPTS = 8
# Each attempt waits at most THREADRUNNER_WEBHOOK_TIMEOUT_SECONDS (8 s by default): five fit the timeout.
BATCH_SIZE = 5
# AWS's advice for a Lambda-consumed queue: a visibility timeout of six times the function's timeout.
VISIBILITY_TIMEOUT = Duration.seconds(6 * STEP_TIMEOUT.to_seconds())
RETENTION = Duration.days(4)


def subscriptions_json(subscriptions: Sequence[WebhookSubscriptionConfig]) -> str:
    """THREADRUNNER_WEBHOOK_SUBSCRIPTIONS: URLs, event types and secret names (never a secret's value)."""
    return json.dumps([subscription.model_dump(mode="json") for subscription in subscriptions])


class OutboundWebhooks(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        subscriptions: Sequence[WebhookSubscriptionConfig],
        functions: FunctionFactory,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters, self.dead_letters_alarm = dead_letters(
            self,
            destination_of="the run webhook delivery queue",
            alarm_description="A run webhook got no 2xx answer in any attempt: the message names the event "
            "(webhook id) and the subscription; send it again to the queue once the receiver is fixed.",
        )
        self.queue = sqs.Queue(
            self,
            "Deliveries",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=VISIBILITY_TIMEOUT,
            retention_period=RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=MAX_ATTEMPTS, queue=self.dead_letters),
        )
        self.function = functions.create(
            FunctionName.deliver_run_webhook,
            environment={
                "THREADRUNNER_WEBHOOK_QUEUE_URL": self.queue.queue_url,
                "THREADRUNNER_WEBHOOK_SUBSCRIPTIONS": subscriptions_json(subscriptions),
            },
        )
        self.function.add_event_source(
            sources.SqsEventSource(self.queue, batch_size=BATCH_SIZE, report_batch_item_failures=True)
        )
        self._grant_secrets(subscriptions)

    def _grant_secrets(self, subscriptions: Sequence[WebhookSubscriptionConfig]) -> None:
        """GetSecretValue on the subscriptions' own secrets only, known by name: their ARNs end in a random
        six-character suffix."""
        names = sorted({subscription.secret_name for subscription in subscriptions})
        if not names:
            return
        stack = Stack.of(self)
        arns = [
            stack.format_arn(
                service="secretsmanager",
                resource="secret",
                resource_name=f"{name}-??????",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for name in names
        ]
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=arns)
        )
        Validations.of(self.function.role).acknowledge(  # type: ignore[arg-type]
            *(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:"
                    f"<AWS::AccountId>:secret:{name}-??????]",
                    reason="A secret an operator created, known by name: Secrets Manager adds a random "
                    "six-character suffix to its ARN.",
                )
                for name in names
            )
        )
