"""Per-function IAM: exact actions on exact resources; the API key reaches only the model steps."""

from __future__ import annotations

import json

import pytest
from threadrunner.tools.declaration import Capability

from infra.constants import (
    ALL_FUNCTIONS,
    CLEANUP_FUNCTIONS,
    MODEL_STEPS,
    TOOL_FUNCTIONS,
    WORKFLOW_STEPS,
    FunctionName,
    LambdaName,
    ToolFunction,
)
from tests.infra.synth import (
    AUTO_DELETE_PROVIDER,
    ENVIRONMENTS,
    Synthesized,
    actions,
    render,
    resources_of,
    synthesize,
    synthesize_with,
)


def grants(synthesized: Synthesized, name: LambdaName) -> dict[str, set[str]]:
    """Action -> the resources it is allowed on, for the function's role."""
    allowed: dict[str, set[str]] = {}
    for statement in synthesized.role_statements(name):
        assert statement["Effect"] == "Allow"
        for action in actions(statement):
            allowed.setdefault(action, set()).update(str(render(r)) for r in resources_of(statement))
    return allowed


def logical_id(synthesized: Synthesized, construct: object) -> str:
    return synthesized.stack.resolve(construct.node.default_child.logical_id)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(MODEL_STEPS | CLEANUP_FUNCTIONS))
def test_model_steps_can_read_the_upstream_secret_and_nothing_else_of_secrets_manager(
    dev: Synthesized, name: FunctionName
) -> None:
    secret_id, _ = dev.upstream_secret()

    allowed = grants(dev, name)

    assert allowed["secretsmanager:GetSecretValue"] == {f"<{secret_id}>"}
    assert [action for action in allowed if action.startswith("secretsmanager:")] == [
        "secretsmanager:GetSecretValue"
    ]


@pytest.mark.parametrize("name", [*TOOL_FUNCTIONS, FunctionName.api], ids=str)
def test_functions_that_do_not_call_the_model_cannot_read_the_secret(
    dev: Synthesized, name: LambdaName
) -> None:
    assert not [action for action in grants(dev, name) if action.startswith("secretsmanager:")]


def test_no_lambda_environment_holds_a_secret_value(dev: Synthesized) -> None:
    _, secret = dev.upstream_secret()
    for function in dev.resources("AWS::Lambda::Function").values():
        rendered = json.dumps(function["Properties"].get("Environment", {}))
        assert "{{resolve:secretsmanager" not in rendered
        assert "sk-" not in rendered
        assert "SecretString" not in rendered
    # The key never passes through the template: the secret is generated, with a placeholder only.
    assert "SecretString" not in secret["Properties"]
    assert json.loads(secret["Properties"]["GenerateSecretString"]["SecretStringTemplate"]) == {"api_key": ""}


@pytest.mark.parametrize("name", TOOL_FUNCTIONS, ids=str)
def test_tools_read_both_tables_and_write_only_the_runs_table(dev: Synthesized, name: LambdaName) -> None:
    threads = logical_id(dev, dev.stack.storage.threads_table)
    runs = logical_id(dev, dev.stack.storage.runs_table)

    allowed = grants(dev, name)

    # Reading a table includes its indexes (named; they project nothing the table does not hold)
    assert allowed["dynamodb:Query"] == {
        f"<{threads}.Arn>",
        f"<{runs}.Arn>",
        f"<{runs}.Arn>/index/by_thread",
        f"<{runs}.Arn>/index/active_runs",
    }
    assert allowed["dynamodb:PutItem"] == allowed["dynamodb:UpdateItem"] == {f"<{runs}.Arn>"}
    assert not [action for action in allowed if action.startswith("states:")]


@pytest.mark.parametrize("name", WORKFLOW_STEPS)
def test_the_other_steps_read_and_write_both_tables(dev: Synthesized, name: FunctionName) -> None:
    threads = logical_id(dev, dev.stack.storage.threads_table)
    runs = logical_id(dev, dev.stack.storage.runs_table)
    messages = logical_id(dev, dev.stack.storage.messages_table)

    allowed = grants(dev, name)

    # Finish run writes the run's tool calls and answer to the thread's message log; Start run (the chat
    # engine) the run's user message with its files inlined.
    logs = {f"<{messages}.Arn>"} if name in (FunctionName.finish_run, FunctionName.start_run) else set()
    assert allowed["dynamodb:UpdateItem"] == {f"<{threads}.Arn>", f"<{runs}.Arn>"} | logs
    assert allowed["dynamodb:GetItem"] >= {f"<{threads}.Arn>", f"<{runs}.Arn>"}
    assert "dynamodb:Scan" not in allowed


def test_only_the_api_reads_and_writes_the_idempotency_table(dev: Synthesized) -> None:
    idempotency = f"<{logical_id(dev, dev.stack.storage.idempotency_table)}.Arn>"

    for name in ALL_FUNCTIONS:
        reaches = {action for action, arns in grants(dev, name).items() if idempotency in arns}
        if name is FunctionName.api:
            assert {
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
            } <= reaches
        else:
            assert reaches == set(), name


def test_each_function_touches_only_the_bucket_prefixes_it_needs(dev: Synthesized) -> None:
    bucket = logical_id(dev, dev.stack.storage.bucket)
    outputs, messages = f"<{bucket}.Arn>/outputs/*", f"<{bucket}.Arn>/messages/*"
    uploads, staged = f"<{bucket}.Arn>/uploads/*", f"<{bucket}.Arn>/staged/*"
    compat = f"<{bucket}.Arn>/compat/*"  # uploads through the Assistants-compatible API
    cleanup = {
        "s3:ListBucket": {f"<{bucket}.Arn>"},
        "s3:DeleteObject": {outputs, messages, uploads, staged, compat},
    }
    expected = {
        FunctionName.collect_outputs: {"s3:PutObject": {outputs}, "s3:AbortMultipartUpload": {outputs}},
        FunctionName.finish_run: {"s3:PutObject": {messages}},
        # the chat engine replays the log and inlines the run's staged files; Start run logs the inlined message
        FunctionName.start_run: {"s3:GetObject": {messages, staged}, "s3:PutObject": {messages}},
        FunctionName.submit_tool_outputs: {"s3:GetObject": {messages, staged}},
        # Check run reads a long user message to start a run stuck upstream again; tools keep whole outputs
        FunctionName.check_run: {"s3:GetObject": {messages}},
        **{name: {"s3:PutObject": {messages}} for name in TOOL_FUNCTIONS},
        # presigned POSTs into uploads/ and GETs of generated files act with the API's rights
        FunctionName.api: {"s3:GetObject": {messages, outputs}, "s3:PutObject": {messages, uploads}},
        # the Assistants-compatible API keeps its uploads, copies an attached one into uploads/ for staging,
        # serves generated files, and presigns nothing
        FunctionName.compat_api: {
            "s3:GetObject": {messages, compat, outputs},
            "s3:PutObject": {messages, compat, uploads},
            "s3:DeleteObject": {compat},
        },
        # staging copies an upload to staged/ and deletes it; only staging writes under staged/
        FunctionName.stage_file: {
            "s3:GetObject": {uploads, staged},
            "s3:PutObject": {staged},
            "s3:DeleteObject": {uploads, staged},
        },
        **dict.fromkeys(CLEANUP_FUNCTIONS, cleanup),
        # the reconciler ends runs as Finish run does, and so does the sweep for events that never came
        FunctionName.reconcile_run: {"s3:PutObject": {messages}},
        FunctionName.sweep_threads: {**cleanup, "s3:PutObject": {messages}},
    }

    for name in ALL_FUNCTIONS:
        s3_actions = {
            action: resources for action, resources in grants(dev, name).items() if action.startswith("s3:")
        }
        assert s3_actions == expected.get(name, {}), name


def test_cleanup_functions_own_the_data_the_api_hands_them_only_deletes(dev: Synthesized) -> None:
    tables = {
        f"<{logical_id(dev, table)}.Arn>"
        for table in (
            dev.stack.storage.threads_table,
            dev.stack.storage.runs_table,
            dev.stack.storage.messages_table,
        )
    }
    threads = f"<{logical_id(dev, dev.stack.storage.threads_table)}.Arn>"
    delete_threads = dev.function(FunctionName.delete_threads)[0]

    for name in CLEANUP_FUNCTIONS:
        allowed = grants(dev, name)
        assert allowed["dynamodb:DeleteItem"] == allowed["dynamodb:BatchWriteItem"] == tables
        # only the sweep reads a whole table, and only the threads table
        assert allowed.get("dynamodb:Scan") == ({threads} if name is FunctionName.sweep_threads else None)
    apis = {FunctionName.api, FunctionName.compat_api}
    for name in apis:
        assert grants(dev, name)["lambda:InvokeFunction"] == {f"<{delete_threads}.Arn>"}
    assert {name for name in ALL_FUNCTIONS if "lambda:InvokeFunction" in grants(dev, name)} == apis


def test_only_the_waits_and_who_answers_them_may_resume_a_waiting_run(dev: Synthesized) -> None:
    # The API (client outputs, approvals), the webhook (a response ended) and the two steps that keep a
    # token (they resume themselves when the answer came first), on this environment's state machine only
    resumers = {name for name in ALL_FUNCTIONS if "states:SendTaskSuccess" in grants(dev, name)}
    assert resumers == {
        FunctionName.api,
        FunctionName.compat_api,
        FunctionName.wait_for_application,
        FunctionName.await_model,
        FunctionName.openai_webhook,
    }
    for name in resumers - {FunctionName.api, FunctionName.compat_api}:
        [machine] = grants(dev, name)["states:SendTaskSuccess"]
        assert ":stateMachine:" in machine and "threadrunner-dev-run" in machine


def test_the_webhook_reads_its_signing_secret_and_the_runs_table_and_nothing_else(dev: Synthesized) -> None:
    secret_id, secret = dev.secret("threadrunner/dev/openai-webhook-secret")
    allowed = grants(dev, FunctionName.openai_webhook)
    # its own secret (never the upstream key), generated with a placeholder: the template holds no value
    assert allowed["secretsmanager:GetSecretValue"] == {f"<{secret_id}>"}
    assert "SecretString" not in secret["Properties"]
    assert not any(action.startswith(("lambda:", "s3:")) for action in allowed)
    assert {action for action in allowed if action.startswith("states:")} == {"states:SendTaskSuccess"}


def test_the_api_starts_stops_describes_and_traces_only_its_own_state_machines_runs(dev: Synthesized) -> None:
    machine, _ = dev.only("AWS::StepFunctions::StateMachine")

    allowed = grants(dev, FunctionName.api)

    executions = f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<{machine}.Name>:*"
    assert allowed["states:StartExecution"] == {f"<{machine}>"}
    # GetExecutionHistory: a run's trace (GET /v1/runs/{run_id}/trace), of this state machine's executions only.
    assert (
        allowed["states:StopExecution"]
        == allowed["states:DescribeExecution"]
        == allowed["states:GetExecutionHistory"]
        == {executions}
    )
    # SendTaskSuccess: client tool outputs and approvals resume a run waiting for the application.
    assert allowed["states:SendTaskSuccess"] == allowed["states:SendTaskFailure"] == {f"<{machine}>"}
    assert {action for action in allowed if action.startswith("states:")} == {
        "states:StartExecution",
        "states:StopExecution",
        "states:DescribeExecution",
        "states:GetExecutionHistory",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
    }


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_no_statement_grants_a_whole_service_or_any_action(environment: str) -> None:
    synthesized = synthesize(environment)
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in actions(statement):
                assert action != "*" and not action.endswith(":*"), action
            if "*" in resources_of(statement):
                # Only services whose actions take no resource ARN.
                assert all(
                    action.split(":")[0] in {"xray", "logs"} or action == "dynamodb:ListStreams"
                    for action in actions(statement)
                ), statement


def test_roles_carry_no_managed_policies(dev: Synthesized, prod: Synthesized) -> None:
    for role in dev.ours("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
    # but CDK's bucket-emptying provider, in dev only: its role writes its own logs with the basic policy
    provider_roles = [
        role["Properties"]["ManagedPolicyArns"]
        for logical_id, role in dev.resources("AWS::IAM::Role").items()
        if logical_id.startswith(AUTO_DELETE_PROVIDER)
    ]
    assert provider_roles == [
        [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}]
    ]
    for role in prod.resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_only_the_tool_lambdas_can_read_the_database_secret() -> None:
    # Given an environment whose SQL tools use a database held in Secrets Manager
    synthesized = synthesize_with("staging", database_secret_name="threadrunner/staging/warehouse")
    for name in ALL_FUNCTIONS:
        secret_reads = {
            resource
            for action, resources in grants(synthesized, name).items()
            if action == "secretsmanager:GetSecretValue"
            for resource in resources
        }
        reads_database = any("threadrunner/staging/warehouse" in resource for resource in secret_reads)
        # Then the tools that declare the database, and only they, may read it, and they learn its name
        # (never its value)
        declares = isinstance(name, ToolFunction) and Capability.database in name.capabilities
        assert reads_database == declares, name
        environment = synthesized.function(name)[1]["Properties"]["Environment"]["Variables"]
        assert ("THREADRUNNER_DATABASE_SECRET_NAME" in environment) == declares


def test_model_steps_can_read_an_engines_own_secret_too() -> None:
    # Given chat on its own upstream with its own key secret
    chat = {"base_url": "https://vllm.example.com/v1", "secret_name": "threadrunner/staging/vllm"}
    synthesized = synthesize_with("staging", engine_upstreams={"chat": chat})
    for name in ALL_FUNCTIONS:
        secret_reads = grants(synthesized, name).get("secretsmanager:GetSecretValue", set())
        reads_it = any("threadrunner/staging/vllm-??????" in resource for resource in secret_reads)
        # Then exactly the functions that talk to the model may read it
        assert reads_it == name.talks_to_model, name


def test_wildcard_actions_on_data_reach_only_cdks_bucket_emptying_provider_in_dev(
    dev: Synthesized, prod: Synthesized
) -> None:
    """Resource policies too: the only wildcard actions on the bucket are CDK's, for the provider that
    empties it before a dev stack deletes it (auto_delete_objects); prod has none."""
    for synthesized in (dev, prod):
        for policy in synthesized.resources("AWS::S3::BucketPolicy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Effect"] != "Allow" or not any("*" in a for a in actions(statement)):
                    continue
                assert synthesized is dev, statement
                principal = render(statement["Principal"]["AWS"])
                assert principal.startswith(f"<{AUTO_DELETE_PROVIDER}") and principal.endswith(".Arn>"), (
                    statement
                )
