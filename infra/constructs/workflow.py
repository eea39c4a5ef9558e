"""The run workflow: a Standard state machine loaded from run.asl.json, and one Lambda per step."""

from __future__ import annotations

from aws_cdk import Acknowledgment, ArnFormat, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from threadrunner.stores.tables import MESSAGES, RUNS, THREADS

from infra.config import EnvironmentConfig
from infra.constants import (
    RUN_WORKFLOW_FILE,
    TOOL_FUNCTIONS,
    WORKFLOW_STEPS,
    FunctionName,
    state_machine_name,
)
from infra.constructs.functions import FunctionFactory
from infra.constructs.log_groups import LogGroups
from infra.constructs.storage import Storage

BOTH_TABLES = (THREADS, RUNS)


class Workflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        storage: Storage,
        functions: FunctionFactory,
        log_groups: LogGroups,
    ) -> None:
        super().__init__(scope, construct_id)
        database = self._database(config)
        tools = {name: functions.create(name, environment=database) for name in TOOL_FUNCTIONS}
        if self._database_secret is not None:
            for tool in tools.values():
                self._database_secret.grant_read(tool)
        # Check run routes each tool call to its tool's Lambda; the Map invokes the ARN it was given.
        routes = Stack.of(self).to_json_string(
            {str(name.tool): fn.function_arn for name, fn in tools.items()}
        )
        self.name = state_machine_name(config.name)
        self.steps: dict[FunctionName, lambda_.Function] = dict(tools)
        for name in WORKFLOW_STEPS:
            if name not in tools:
                routing = {"THREADRUNNER_TOOL_FUNCTIONS": routes} if name is FunctionName.check_run else None
                self.steps[name] = functions.create(name, environment=routing)
        self._grant_data_access(storage)
        self._let_finish_run_start_the_next_run()
        # The /aws/vendedlogs/ prefix keeps Step Functions from growing the account's log resource policy.
        self.log_group = log_groups.create(self, "Logs", log_group_name=f"/aws/vendedlogs/states/{self.name}")
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            # Inline rather than from_file (an S3 asset): the template then shows the workflow it deploys.
            definition_body=sfn.DefinitionBody.from_string(RUN_WORKFLOW_FILE.read_text()),
            definition_substitutions={
                name.asl_placeholder: function.function_arn
                for name, function in self.steps.items()
                if name.tool is None  # tools are routed at run time, by ARN
            },
            tracing_enabled=True,
            # Every event (state entered, task failed, ...) in every environment, never execution data: the
            # states' inputs and outputs are ids today, but logs must not hold prompts or answers if a
            # payload ever does (the execution history in the console still shows them to operators).
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
            removal_policy=config.cdk_removal_policy,
        )
        self._grant_invoke()
        Validations.of(self.state_machine.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="Log delivery (logs:*LogDelivery*, DescribeLogGroups, ...) and X-Ray "
                "(PutTraceSegments, GetSamplingRules, ...) actions take no resource ARN.",
            ),
        )

    def _database(self, config: EnvironmentConfig) -> dict[str, str] | None:
        """The SQL tools' database secret, when the environment names one."""
        self._database_secret = None
        if config.database_secret_name is None:
            return None
        self._database_secret = secretsmanager.Secret.from_secret_name_v2(
            self, "DatabaseSecret", config.database_secret_name
        )
        return {"THREADRUNNER_DATABASE_SECRET_NAME": config.database_secret_name}

    def _grant_data_access(self, storage: Storage) -> None:
        for name, function in self.steps.items():
            if name.tool is not None:
                # A tool reads the run and writes its ledger entry; it never changes a thread. A whole output
                # the model gets cut short is kept with the thread's log in S3.
                storage.grant_tables(function, read=BOTH_TABLES, write=(RUNS,))
                storage.grant_message_bodies(function, read=False, write=True)
            else:
                storage.grant_tables(function, read=BOTH_TABLES, write=BOTH_TABLES)
        storage.grant_put_outputs(self.steps[FunctionName.collect_outputs])
        self._grant_chat_engine(storage)
        # Finish run writes the run's tool calls and answer to the thread's message log.
        storage.grant_tables(self.steps[FunctionName.finish_run], read=(), write=(MESSAGES,))
        storage.grant_message_bodies(self.steps[FunctionName.finish_run], read=False, write=True)
        # Check run starts a run stuck in the upstream's queue again: a long user message lives only in the
        # thread's log (Start run and Submit tool outputs read it too, see _grant_chat_engine).
        check_run = self.steps[FunctionName.check_run]
        storage.grant_tables(check_run, read=(MESSAGES,), write=())
        storage.grant_message_bodies(check_run, read=True, write=False)

    def _grant_chat_engine(self, storage: Storage) -> None:
        """The chat engine (a thread's own, or the fallback) calls the model in Start run and Submit tool
        outputs: both replay the thread's log and read the run's staged files to inline them; Start run also
        writes the inlined files into the run's user message in the log."""
        for name in (FunctionName.start_run, FunctionName.submit_tool_outputs):
            step = self.steps[name]
            starts = name is FunctionName.start_run
            storage.grant_tables(step, read=(MESSAGES,), write=(MESSAGES,) if starts else ())
            storage.grant_message_bodies(step, read=True, write=starts)
            storage.grant_read_files(step)

    def _let_finish_run_start_the_next_run(self) -> None:
        """Finish run hands the thread to its next queued run and starts its execution. The state machine's
        ARN is built from its name, not referenced: the definition already refers to Finish run (a cycle)."""
        finish_run = self.steps[FunctionName.finish_run]
        stack = Stack.of(self)
        machine_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        finish_run.add_environment("THREADRUNNER_STATE_MACHINE_ARN", machine_arn)
        finish_run.add_to_role_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[machine_arn])
        )

    def _grant_invoke(self) -> None:
        """lambda:InvokeFunction on exactly the step functions (CDK's grant adds ``:*`` for versions)."""
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[function.function_arn for function in self.steps.values()],
            )
        )
