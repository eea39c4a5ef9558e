"""Dead letters: the queue where an asynchronous delivery ends once its retries are spent, and the alarm that
says one is waiting there. Cleanup and Files each have their own; Monitoring sends the alarms to its topic."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# SQS's longest retention: time for a person to look at what failed.
RETENTION = Duration.days(14)


def dead_letters(
    scope: Construct, *, destination_of: str, alarm_description: str
) -> tuple[sqs.Queue, cloudwatch.Alarm]:
    """The queue ``DeadLetters`` in ``scope`` (encrypted, TLS only) and ``DeadLettersAlarm`` on its first
    message; ``destination_of`` names what dead-letters to it (for cdk-nag), ``alarm_description`` what a
    message there means."""
    queue = sqs.Queue(
        scope,
        "DeadLetters",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=RETENTION,
    )
    Validations.of(queue).acknowledge(
        Acknowledgment(
            id="AwsSolutions-SQS3",
            reason=f"This queue is itself the dead-letter destination of {destination_of}.",
        )
    )
    alarm = cloudwatch.Alarm(
        scope,
        "DeadLettersAlarm",
        alarm_description=alarm_description,
        metric=queue.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(5), statistic="Maximum"
        ),
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    return queue, alarm
