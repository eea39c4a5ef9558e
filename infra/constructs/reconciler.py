"""The reconciler: a rule on Step Functions' Execution Status Change events of the run workflow (FAILED,
TIMED_OUT, ABORTED) invokes reconcile_run, which ends the run its execution could not and hands its thread on
(threadrunner.run_repair). The scheduled sweep repairs with the same code what no event reached, so it gets
the same rights here, and DescribeExecution. Failed deliveries and invocations are retried, then
dead-lettered, with an alarm."""

from __future__ import annotations

from aws_cdk import Acknowledgment, ArnFormat, Duration, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from threadrunner.models.repairs import ENDED_BADLY, STATES_SOURCE, STATUS_CHANGE
from threadrunner.stores.tables import MESSAGES, RUNS, THREADS

from infra.constants import FunctionName
from infra.constructs.dead_letters import dead_letters
from infra.constructs.functions import FunctionFactory
from infra.constructs.storage import Storage

# Lambda's own retries of a failed invocation, and EventBridge's of a failed delivery, before dead letters.
RETRY_ATTEMPTS = 2
MAX_EVENT_AGE = Duration.hours(6)


class Reconciler(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        functions: FunctionFactory,
        state_machine: sfn.StateMachine,
        sweep: lambda_.Function,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function: lambda_.Function = functions.create(FunctionName.reconcile_run)
        self.dead_letters, self.dead_letters_alarm = dead_letters(
            self,
            destination_of="the reconciler's rule and Lambda",
            alarm_description="An ended execution's run could not be repaired after retries; the sweep "
            "tries again, and the message names the execution.",
        )
        # As Finish run: the run and its thread, the thread's log, and the next queued run's execution.
        storage.grant_tables(self.function, read=(THREADS, RUNS), write=(THREADS, RUNS, MESSAGES))
        storage.grant_message_bodies(self.function, read=False, write=True)
        # The sweep reads and writes all three tables already (thread cleanup); it writes logs too now.
        storage.grant_message_bodies(sweep, read=False, write=True)
        for repairer in (self.function, sweep):
            repairer.add_environment("THREADRUNNER_STATE_MACHINE_ARN", state_machine.state_machine_arn)
            repairer.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["states:StartExecution"], resources=[state_machine.state_machine_arn]
                )
            )
        self._let_sweep_describe_executions(sweep, state_machine)
        self.function.configure_async_invoke(
            retry_attempts=RETRY_ATTEMPTS,
            max_event_age=MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(self.dead_letters),
        )
        self.rule = events.Rule(
            self,
            "ExecutionEndedBadly",
            description="Run workflow executions that ended FAILED, TIMED_OUT or ABORTED go to reconcile_run",
            event_pattern=events.EventPattern(
                source=[STATES_SOURCE],
                detail_type=[STATUS_CHANGE],
                detail={
                    "stateMachineArn": [state_machine.state_machine_arn],
                    "status": sorted(status.value for status in ENDED_BADLY),
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    retry_attempts=RETRY_ATTEMPTS,
                    max_event_age=MAX_EVENT_AGE,
                    dead_letter_queue=self.dead_letters,
                )
            ],
        )

    def _let_sweep_describe_executions(
        self, sweep: lambda_.Function, state_machine: sfn.StateMachine
    ) -> None:
        """The sweep asks whether each unended run's execution still runs: this state machine's only."""
        executions = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        sweep.add_to_role_policy(
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions])
        )
        machine = Stack.of(self).get_logical_id(state_machine.node.default_child)  # type: ignore[arg-type]
        arn = f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<{machine}.Name>:*"
        Validations.of(sweep.role).acknowledge(  # type: ignore[arg-type]
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{arn}]",
                reason="Execution names are run ids, known only at run time; the ARN is limited to this "
                "state machine's executions.",
            ),
        )
