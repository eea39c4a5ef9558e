"""Thread cleanup: the TTL stream, the daily sweep and requested deletes, each a Lambda over the same code
(threadrunner.cleanup), with one dead-letter queue for what keeps failing and an alarm on it."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct
from threadrunner.cleanup import TTL_PRINCIPAL
from threadrunner.stores.tables import MESSAGES, RUNS, THREADS

from infra.config import EnvironmentConfig
from infra.constants import (
    METRICS_NAMESPACE,
    SERVICE_NAME,
    FunctionName,
)
from infra.constructs.dead_letters import dead_letters
from infra.constructs.functions import FunctionFactory
from infra.constructs.storage import Storage

ALL_TABLES = (THREADS, RUNS, MESSAGES)
# A stream record is retried this often (with the batch split in two each time) before it is dead-lettered;
# the cleanup record it left in the threads table stays for the sweep.
STREAM_RETRY_ATTEMPTS = 4
# Only TTL deleting a thread: not a user's DELETE (we remove those items ourselves), not slots or cleanups.
TTL_REMOVALS_OF_THREADS = {
    "eventName": lambda_.FilterRule.is_equal("REMOVE"),
    "userIdentity": {"type": ["Service"], "principalId": [TTL_PRINCIPAL]},
    "dynamodb": {"OldImage": {"kind": {"S": ["thread"]}}},
}


class Cleanup(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        storage: Storage,
        functions: FunctionFactory,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters, self.dead_letters_alarm = dead_letters(
            self,
            destination_of="the cleanup Lambdas",
            alarm_description="A thread cleanup failed repeatedly; its cleanup#<thread> record says what is left.",
        )
        self.functions = {
            name: functions.create(name)
            for name in (
                FunctionName.clean_up_thread,
                FunctionName.delete_threads,
                FunctionName.sweep_threads,
            )
        }
        for function in self.functions.values():
            storage.grant_tables(function, read=ALL_TABLES, write=ALL_TABLES)
            storage.grant_cleanup(function)
        storage.grant_scan(self.functions[FunctionName.sweep_threads], THREADS)

        self._listen_to_ttl(storage)
        # The API invokes it asynchronously: Lambda retries twice, then hands the event (which names the
        # user and threads) to the dead-letter queue.
        self.functions[FunctionName.delete_threads].configure_async_invoke(
            retry_attempts=2,
            max_event_age=Duration.hours(6),
            on_failure=destinations.SqsDestination(self.dead_letters),
        )
        self.sweep_schedule = events.Rule(
            self,
            "SweepSchedule",
            description="Clean threads past their expiry that DynamoDB TTL has not removed yet",
            schedule=events.Schedule.expression(config.sweep_schedule),
            targets=[targets.LambdaFunction(self.functions[FunctionName.sweep_threads], retry_attempts=2)],
        )
        self.given_up_alarm = cloudwatch.Alarm(
            self,
            "CleanupsGivenUpAlarm",
            alarm_description="The sweep stopped retrying a cleanup after too many attempts; a person has to look.",
            metric=cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="CleanupsGivenUp",
                dimensions_map={"service": SERVICE_NAME},
                period=Duration.days(1),
                statistic="Maximum",
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    @property
    def delete_threads(self) -> lambda_.Function:
        return self.functions[FunctionName.delete_threads]

    def _listen_to_ttl(self, storage: Storage) -> None:
        listener = self.functions[FunctionName.clean_up_thread]
        Validations.of(listener.role).acknowledge(  # type: ignore[arg-type]
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="dynamodb:ListStreams takes no resource ARN; reading records is limited to this stream.",
            )
        )
        listener.add_event_source(
            sources.DynamoEventSource(
                storage.threads_table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=10,
                bisect_batch_on_error=True,
                retry_attempts=STREAM_RETRY_ATTEMPTS,
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.dead_letters),
                filters=[lambda_.FilterCriteria.filter(TTL_REMOVALS_OF_THREADS)],
            )
        )
