"""What an operator watches: one dashboard per environment (runs by status, duration percentiles, tokens, cost
per day, tool errors, repaired runs, throttles, dead letters) and the alarms (failure rate, timed-out runs,
daily cost, repaired runs, dead letters, given-up cleanups), all to one encrypted SNS topic. The run metrics
are threadrunner.run_metrics'."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from threadrunner import run_metrics
from threadrunner.models.records import RunStatus
from threadrunner.models.repairs import RepairCause

from infra.config import EnvironmentConfig
from infra.constants import METRICS_NAMESPACE, SERVICE_NAME

FIVE_MINUTES = Duration.minutes(5)
ONE_DAY = Duration.days(1)
WIDTH = 12  # two widgets per row (a dashboard row is 24 units wide)

# Metric-math ids for the run endings (ids must start with a lower-case letter).
_ENDINGS = {
    "completed": run_metrics.RUNS_ENDED[RunStatus.completed],
    "failed": run_metrics.RUNS_ENDED[RunStatus.failed],
    "timedOut": run_metrics.RUNS_ENDED[RunStatus.timed_out],
    "cancelled": run_metrics.RUNS_ENDED[RunStatus.cancelled],
}


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        functions: Sequence[lambda_.Function],
        state_machine: sfn.StateMachine,
        dead_letters: sqs.IQueue,
        other_alarms: Sequence[cloudwatch.Alarm] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.topic = self._topic(config)
        self.failure_rate = self._failure_rate()
        self.alarms = [
            self._alarm(
                "FailureRateAlarm",
                self.failure_rate,
                threshold=config.failure_rate_alarm_percent,
                description=f"More than {config.failure_rate_alarm_percent:g}% of the runs ending in 15 minutes "
                "failed or timed out.",
                evaluation_periods=3,
            ),
            self._alarm(
                "TimedOutRunsAlarm",
                self.run_metric(run_metrics.RUNS_ENDED[RunStatus.timed_out]),
                threshold=1,
                description="Runs timed out: the upstream is slow or stuck (the runs were cancelled upstream).",
            ),
            self._alarm(
                "DailyCostAlarm",
                self.run_metric(run_metrics.ESTIMATED_COST, period=ONE_DAY),
                threshold=config.daily_cost_alarm_usd,
                description=f"Estimated model spend over the last 24 hours passed USD {config.daily_cost_alarm_usd:g}.",
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            ),
            self._alarm(
                "RunsRepairedAlarm",
                self.run_metric(run_metrics.RUNS_REPAIRED),
                threshold=1,
                description="Runs were repaired: an execution died (failed, timed out, stopped) or a thread "
                "stayed locked. The reconcile_run and sweep_threads logs name each run and cause.",
            ),
        ]
        for alarm in other_alarms:  # dead letters, given-up cleanups: same topic
            alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.dashboard = self._dashboard(
            functions, state_machine, dead_letters, [*self.alarms, *other_alarms]
        )

    def run_metric(
        self,
        name: str,
        *,
        statistic: str = "Sum",
        period: Duration = FIVE_MINUTES,
        label: str | None = None,
        cause: str | None = None,
    ) -> cloudwatch.Metric:
        """A run metric of this environment, across assistants and models (the ``environment`` set), or for
        one ``cause`` (RunsRepaired's ``environment`` + ``cause`` set)."""
        dimensions = {"environment": self._config.name} | ({"cause": cause} if cause is not None else {})
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map=dimensions,
            statistic=statistic,
            period=period,
            label=label,
        )

    def _topic(self, config: EnvironmentConfig) -> sns.Topic:
        # A customer managed key: CloudWatch cannot publish to a topic encrypted with the AWS managed SNS key.
        key = kms.Key(
            self,
            "AlarmsKey",
            description=f"{SERVICE_NAME} {config.name} alarm notifications",
            enable_key_rotation=True,
            removal_policy=config.cdk_removal_policy,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        topic = sns.Topic(
            self,
            "AlarmsTopic",
            display_name=f"{SERVICE_NAME} {config.name} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if config.alarm_email is not None:
            topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        return topic

    def _failure_rate(self) -> cloudwatch.MathExpression:
        """Failed and timed-out runs as a percentage of the runs that ended (0 when none ended)."""
        ended = " + ".join(f"FILL({metric_id}, 0)" for metric_id in _ENDINGS)
        return cloudwatch.MathExpression(
            expression=f"IF(({ended}) > 0, 100 * (FILL(failed, 0) + FILL(timedOut, 0)) / ({ended}), 0)",
            using_metrics={metric_id: self.run_metric(name) for metric_id, name in _ENDINGS.items()},
            label="Failure rate (%)",
            period=FIVE_MINUTES,
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        evaluation_periods: int = 1,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=f"threadrunner {self._config.name}: {description}",
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        return alarm

    def _dashboard(
        self,
        functions: Sequence[lambda_.Function],
        state_machine: sfn.StateMachine,
        dead_letters: sqs.IQueue,
        alarms: Sequence[cloudwatch.Alarm],
    ) -> cloudwatch.Dashboard:
        graph = _graph
        runs_by_status = [
            self.run_metric(run_metrics.RUNS_STARTED, label="started"),
            *(self.run_metric(name, label=name.removeprefix("Runs")) for name in _ENDINGS.values()),
        ]
        durations = [
            self.run_metric(run_metrics.RUN_DURATION, statistic=p, label=f"duration {p}")
            for p in ("p50", "p90", "p99")
        ]
        tokens = [
            self.run_metric(name, period=Duration.hours(1), label=name.removesuffix("Tokens"))
            for name in run_metrics.TOKENS
        ]
        throttles = [
            *(
                fn.metric_throttles(period=FIVE_MINUTES, label=fn.node.id.removesuffix("Function"))
                for fn in functions
            ),
            state_machine.metric_throttled(period=FIVE_MINUTES, label="state machine"),
        ]
        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{SERVICE_NAME}-{self._config.name}",
            default_interval=Duration.days(7),
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24, height=3),
        )
        dashboard.add_widgets(
            graph("Runs by status", runs_by_status, stacked=True),
            graph("Failure rate (%)", [self.failure_rate]),
        )
        dashboard.add_widgets(
            graph("Run duration (s)", durations),
            graph("Queue wait p90 (s)", [self.run_metric(run_metrics.QUEUE_WAIT, statistic="p90")]),
        )
        dashboard.add_widgets(
            graph("Tokens per hour", tokens, stacked=True),
            graph(
                "Estimated cost per day (USD)",
                [self.run_metric(run_metrics.ESTIMATED_COST, period=ONE_DAY, label="cost")],
                right=[
                    self.run_metric(
                        run_metrics.RUNS_WITHOUT_PRICE, period=ONE_DAY, label="runs without price"
                    )
                ],
            ),
        )
        dashboard.add_widgets(
            graph(
                "Tool calls and errors",
                [
                    self.run_metric(run_metrics.TOOL_CALLS, label="calls"),
                    self.run_metric(run_metrics.TOOL_ERRORS, label="errors"),
                ],
            ),
            graph(
                "Fallbacks to the chat engine", [self.run_metric(run_metrics.FALLBACKS, label="fallbacks")]
            ),
        )
        dashboard.add_widgets(
            graph(
                "Runs repaired, by cause",
                [
                    self.run_metric(run_metrics.RUNS_REPAIRED, cause=cause.value, label=cause.value)
                    for cause in RepairCause
                ],
                stacked=True,
            ),
        )
        dashboard.add_widgets(
            graph("Throttles", throttles, stacked=True),
            graph(
                "Dead letters (cleanup)",
                [
                    dead_letters.metric_approximate_number_of_messages_visible(
                        period=FIVE_MINUTES, statistic="Maximum"
                    )
                ],
            ),
        )
        return dashboard


def _graph(
    title: str,
    left: Sequence[cloudwatch.IMetric],
    *,
    right: Sequence[cloudwatch.IMetric] = (),
    stacked: bool = False,
) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(
        title=title, left=list(left), right=list(right), stacked=stacked, width=WIDTH, height=6
    )
