"""The run workflow: a Standard state machine loaded from run.asl.json, and one Lambda per step."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aws_cdk import Acknowledgment, ArnFormat, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from threadrunner.stores.tables import MESSAGES, RUNS, THREADS
from threadrunner.tools.declaration import Capability
from threadrunner.tools.tool_lambda import TOOL_NAME_VARIABLE

from infra.config import EnvironmentConfig
from infra.constants import (
    WORKFLOW_STEPS,
    FunctionName,
    LambdaName,
    ToolFunction,
    state_machine_name,
    tool_functions,
)
from infra.constructs.functions import FunctionFactory
from infra.constructs.log_groups import LogGroups
from infra.constructs.storage import Storage
from infra.workflows import run_workflow_definition

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
        self._database_secret_name = config.database_secret_name
        self._database_secret = self._database(config)
        # One Lambda per registered tool, granted what its declared capabilities need and nothing more.
        self.tools: dict[ToolFunction, lambda_.Function] = {}
        for tool in tool_functions():
            function = functions.create(tool, environment={TOOL_NAME_VARIABLE: tool.tool})
            self._grant_capabilities(tool, function)
            self.tools[tool] = function
        # Check run routes each tool call to its tool's Lambda; the Map invokes the ARN it was given.
        routes = Stack.of(self).to_json_string(
            {tool.tool: fn.function_arn for tool, fn in self.tools.items()}
        )
        self.name = state_machine_name(config.name)
        # Built from the name, not referenced: the definition refers to the steps that need it (a cycle).
        self.machine_arn = Stack.of(self).format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.steps: dict[LambdaName, lambda_.Function] = {tool: fn for tool, fn in self.tools.items()}
        for name in WORKFLOW_STEPS:
            routing = {"THREADRUNNER_TOOL_FUNCTIONS": routes} if name is FunctionName.check_run else None
            self.steps[name] = functions.create(name, environment=routing)
        self._grant_data_access(storage)
        self._let_finish_run_start_the_next_run()
        # The /aws/vendedlogs/ prefix keeps Step Functions from growing the account's log resource policy.
        self.log_group = log_groups.create(self, "Logs", log_group_name=f"/aws/vendedlogs/states/{self.name}")
        definition = run_workflow_definition(config.completion)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            # Inline rather than from_file (an S3 asset): the template then shows the workflow it deploys.
            definition_body=sfn.DefinitionBody.from_string(definition),
            definition_substitutions={
                name.asl_placeholder: function.function_arn
                for name, function in self.steps.items()
                # tools are routed at run time, by ARN; Await model is in the webhook mode's definition only
                if isinstance(name, FunctionName) and f"${{{name.asl_placeholder}}}" in definition
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

    def _database(self, config: EnvironmentConfig) -> secretsmanager.ISecret | None:
        """The SQL tools' database secret, when the environment names one (else the bundled sample)."""
        if config.database_secret_name is None:
            return None
        return secretsmanager.Secret.from_secret_name_v2(self, "DatabaseSecret", config.database_secret_name)

    def _grant_capabilities(self, tool: ToolFunction, function: lambda_.Function) -> None:
        for capability in tool.capabilities:
            grant = CAPABILITY_GRANTS.get(capability)
            if grant is None:
                raise ValueError(
                    f"tool {tool.tool} declares capability {capability!r}, which grants nothing yet: "
                    "add it to CAPABILITY_GRANTS in infra/constructs/workflow.py"
                )
            grant(self, function)

    def _grant_database(self, function: lambda_.Function) -> None:
        """Capability.database: the bundled sample is in the layer (nothing to grant); a database in Secrets
        Manager is read by name, at run time."""
        if self._database_secret is None or self._database_secret_name is None:
            return
        function.add_environment("THREADRUNNER_DATABASE_SECRET_NAME", self._database_secret_name)
        self._database_secret.grant_read(function)

    def _grant_data_access(self, storage: Storage) -> None:
        for name, function in self.steps.items():
            if isinstance(name, ToolFunction):
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
        machine_arn = self.machine_arn
        finish_run.add_environment("THREADRUNNER_STATE_MACHINE_ARN", machine_arn)
        finish_run.add_to_role_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[machine_arn])
        )
        # Wait for the application hands its own token back when the application answered before it
        # stored the token (threadrunner.workflow.application_steps); Await model when the webhook came
        # before it stored its token (threadrunner.workflow.completion).
        self.steps[FunctionName.wait_for_application].add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:SendTaskSuccess", "states:SendTaskFailure"], resources=[machine_arn]
            )
        )
        self.steps[FunctionName.await_model].add_to_role_policy(
            iam.PolicyStatement(actions=["states:SendTaskSuccess"], resources=[machine_arn])
        )

    def _grant_invoke(self) -> None:
        """lambda:InvokeFunction on exactly the step functions (CDK's grant adds ``:*`` for versions)."""
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[function.function_arn for function in self.steps.values()],
            )
        )


# What each capability a tool may declare (threadrunner.tools.declaration.Capability) grants its Lambda: the
# one place where tool permissions are decided. Every tool Lambda also gets its ledger access
# (Workflow._grant_data_access); a capability missing here stops synth with its name.
CAPABILITY_GRANTS: Mapping[Capability, Callable[[Workflow, lambda_.Function], None]] = {
    Capability.database: Workflow._grant_database,
}
