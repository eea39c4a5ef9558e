"""Fan-out of run events: the runs table's stream, filtered to new event items, to the fan_out_run_events
Lambda, which enqueues outbound webhook deliveries and publishes live events (threadrunner.run_event_fanout).
A record it cannot hand on is retried (the batch split in two each time), then dead-lettered with an alarm."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct
from threadrunner.stores.run_events import EVENT_PREFIX

from infra.config import WebhookSubscriptionConfig
from infra.constants import FunctionName
from infra.constructs.dead_letters import dead_letters
from infra.constructs.functions import FunctionFactory
from infra.constructs.live_events import LiveEvents
from infra.constructs.outbound_webhooks import OutboundWebhooks, subscriptions_json
from infra.constructs.storage import Storage

# Only a new event of a run's log: not the run record, its ledger or the events' ``eventkey#`` markers, and
# no update or removal (TTL, a deleted run).
NEW_RUN_EVENTS = {
    "eventName": lambda_.FilterRule.is_equal("INSERT"),
    "dynamodb": {"Keys": {"sk": {"S": lambda_.FilterRule.begins_with(EVENT_PREFIX)}}},
}
# A record whose deliveries cannot be enqueued is tried this often (the batch halved each time), for at most
# this long, before it is dead-lettered: SQS being unreachable for hours, or a record that is no event.
STREAM_RETRY_ATTEMPTS = 8
STREAM_MAX_RECORD_AGE = Duration.hours(6)
# Several batches of one shard at once: Lambda keeps the order per partition key (a run's events stay in
# order), and one run's retried record holds back fewer other runs.
PARALLELIZATION_FACTOR = 4
BATCH_SIZE = 100


class RunEventFanout(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        functions: FunctionFactory,
        live_events: LiveEvents,
        webhooks: OutboundWebhooks,
        subscriptions: Sequence[WebhookSubscriptionConfig],
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters, self.dead_letters_alarm = dead_letters(
            self,
            destination_of="the run event fan-out (stream records it could not hand on)",
            alarm_description="Run events were not handed to their webhooks after every retry: the message "
            "names the runs table's stream shard and the sequence numbers to look at.",
        )
        self.function = functions.create(
            FunctionName.fan_out_run_events,
            environment={
                "THREADRUNNER_LIVE_EVENTS_HTTP_DOMAIN": live_events.http_domain,
                "THREADRUNNER_WEBHOOK_QUEUE_URL": webhooks.queue.queue_url,
                "THREADRUNNER_WEBHOOK_SUBSCRIPTIONS": subscriptions_json(subscriptions),
            },
        )
        live_events.grant_publish(self.function)
        webhooks.queue.grant_send_messages(self.function)
        Validations.of(self.function.role).acknowledge(  # type: ignore[arg-type]
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="dynamodb:ListStreams takes no resource ARN; reading records is limited to this stream.",
            )
        )
        self.function.add_event_source(
            sources.DynamoEventSource(
                storage.runs_table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=BATCH_SIZE,
                parallelization_factor=PARALLELIZATION_FACTOR,
                bisect_batch_on_error=True,
                retry_attempts=STREAM_RETRY_ATTEMPTS,
                max_record_age=STREAM_MAX_RECORD_AGE,
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.dead_letters),
                filters=[lambda_.FilterCriteria.filter(NEW_RUN_EVENTS)],
            )
        )
