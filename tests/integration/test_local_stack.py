"""The local stack with tiny fake handlers: the real workflow runs in moto, its tasks reach the handlers in
process, and the HTTP API turns requests into API Gateway events.

The fake handlers append what they receive to a JSON-lines file named by ``FAKE_CALLS`` (passed through
``overrides``, like any setting the functions read from their environment).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from local.auth import AUDIENCE, ISSUER, issue_token, local_private_key
from local.stack import LocalStack

pytestmark = pytest.mark.xdist_group("local_stack")  # moto is process-global: one stack at a time

RECORD = """
import json, os

def record(name, event, context):
    with open(os.environ["FAKE_CALLS"], "a") as log:
        log.write(json.dumps({"function": name, "event": event, "context": context.function_name,
                              "arn": context.invoked_function_arn,
                              "runs_table": os.environ["THREADRUNNER_RUNS_TABLE"]}) + "\\n")
"""
PROGRESS = """
def progress(status, poll_count=0, tool_calls=()):
    return {"status": status, "wait_seconds": 0, "poll_count": poll_count, "tool_calls": list(tool_calls)}
"""
FAKE_HANDLERS = {
    "start_run": """
def lambda_handler(event, context):
    record("start_run", event, context)
    return progress("in_progress")
""",
    "check_run": """
class UpstreamQuotaExceeded(Exception):
    pass

def lambda_handler(event, context):
    record("check_run", event, context)
    if event["run_id"].startswith("run_quota"):
        raise UpstreamQuotaExceeded("insufficient_quota: check your plan")
    polls = event["run"]["poll_count"] + 1
    if polls == 1:
        tools = json.loads(os.environ["THREADRUNNER_TOOL_FUNCTIONS"])
        return progress("requires_action", polls, [
            {"call_id": "c1", "name": "get_table_schema", "function": tools["get_table_schema"]},
            {"call_id": "c2", "name": "query_database", "function": tools["query_database"]}])
    return progress("completed", polls)
""",
    "tool_get_table_schema": """
def lambda_handler(event, context):
    record("tool_get_table_schema", event, context)
    return {"call_id": event["call_id"], "is_error": False}
""",
    "tool_query_database": """
def lambda_handler(event, context):
    record("tool_query_database", event, context)
    return {"call_id": event["call_id"], "is_error": False}
""",
    "submit_tool_outputs": """
def lambda_handler(event, context):
    record("submit_tool_outputs", event, context)
    return progress("in_progress", event["run"]["poll_count"])
""",
    "collect_outputs": """
def lambda_handler(event, context):
    record("collect_outputs", event, context)
    return progress("completed", event["run"]["poll_count"])
""",
    "finish_run": """
def lambda_handler(event, context):
    record("finish_run", event, context)
    return {"status": "failed" if "error" in event else event["run"]["status"]}
""",
    "api": """
def lambda_handler(event, context):
    record("api", event, context)
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}
""",
}
REAL_FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


@pytest.fixture(scope="module")
def calls_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("calls") / "calls.jsonl"


@pytest.fixture(scope="module")
def fake_functions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("functions")
    for folder, body in FAKE_HANDLERS.items():
        (root / folder).mkdir()
        (root / folder / "handler.py").write_text("import json\n" + RECORD + PROGRESS + body)
    return root


@pytest.fixture(scope="module")
def stack(fake_functions: Path, calls_log: Path) -> Iterator[LocalStack]:
    overrides = {"FAKE_CALLS": str(calls_log), "THREADRUNNER_POLL_FIRST_SECONDS": "0"}
    with LocalStack(
        upstream_base_url="http://127.0.0.1:9/v1",
        api_key="sk-local-test",
        overrides=overrides,
        functions_dir=fake_functions,
    ) as running:
        yield running


def calls(log: Path, run_id: str | None = None) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    return [entry for entry in entries if run_id is None or entry["event"].get("run_id") == run_id]


def start_run(stack: LocalStack, run_id: str) -> str:
    execution_input = {
        "run_id": run_id,
        "settings": {"first_wait_seconds": 0, "max_wait_seconds": 0, "max_polls": 10},
        "run": {"status": "queued", "wait_seconds": 0, "poll_count": 0, "tool_calls": []},
    }
    started = stack.client("stepfunctions").start_execution(
        stateMachineArn=stack.state_machine_arn, name=run_id, input=json.dumps(execution_input)
    )
    return str(started["executionArn"])


def test_an_execution_runs_to_the_end_through_the_in_process_handlers(
    stack: LocalStack, calls_log: Path
) -> None:
    # Given a run whose model asks for two tools once, then completes
    execution_arn = start_run(stack, "run_happy")

    # When the workflow runs
    execution = stack.wait_for_execution(execution_arn)

    # Then it succeeded, every step reached its handler in order, and each handler ran as its own function
    assert execution["status"] == "SUCCEEDED", execution
    seen = calls(calls_log, "run_happy")
    order = [call["function"] for call in seen]
    # the two tool calls are parallel Map iterations: either may start first
    order[2:4] = sorted(order[2:4])
    assert order == [
        "start_run",
        "check_run",
        "tool_get_table_schema",
        "tool_query_database",
        "submit_tool_outputs",
        "check_run",
        "collect_outputs",
        "finish_run",
    ]
    # each tool call reached its own tool's Lambda
    assert {
        call["function"]: call["event"]["call_id"] for call in seen if call["function"].startswith("tool_")
    } == {
        "tool_get_table_schema": "c1",
        "tool_query_database": "c2",
    }
    finish = seen[-1]
    assert finish["context"] == "threadrunner-local-finish_run"
    assert finish["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:threadrunner-local-finish_run"
    assert finish["runs_table"] == stack.table_names["runs"]
    assert finish["event"]["run"]["status"] == "completed"


def test_the_trace_lists_the_states_in_order_with_map_items(stack: LocalStack) -> None:
    execution_arn = start_run(stack, "run_traced")
    stack.wait_for_execution(execution_arn)

    steps = stack.execution_trace(execution_arn)

    assert [step.name for step in steps if step.map_index is None] == [
        "Start run",
        "Wait for model",
        "Check run",
        "What does the run need?",
        "Run tools",
        "Submit tool outputs",
        "Wait for model",
        "Check run",
        "What does the run need?",
        "Collect outputs",
        "Finish run",
        "Did the run complete?",
        "Run completed",
    ]
    tools = [step for step in steps if step.map_index is not None]
    assert {(step.name, step.map_index) for step in tools} == {("Run tool", 0), ("Run tool", 1)}
    assert all(step.status == "succeeded" and step.duration_ms is not None for step in steps)
    assert [step.type for step in steps[:5]] == ["Task", "Wait", "Task", "Choice", "Map"]


def test_a_handler_exception_is_caught_by_the_workflow_under_its_class_name(
    stack: LocalStack, calls_log: Path
) -> None:
    # Given a run whose Check run step raises UpstreamQuotaExceeded (not retried by the ASL)
    execution_arn = start_run(stack, "run_quota")

    execution = stack.wait_for_execution(execution_arn)

    # Then the Catch sends the error to Finish run, named after the exception class, without a stack trace
    assert execution["status"] == "FAILED"
    finish = [call for call in calls(calls_log, "run_quota") if call["function"] == "finish_run"]
    assert len(finish) == 1
    error = finish[0]["event"]["error"]
    assert error["Error"] == "UpstreamQuotaExceeded"
    assert json.loads(error["Cause"]) == {
        "errorType": "UpstreamQuotaExceeded",
        "errorMessage": "insufficient_quota: check your plan",
    }
    # And the trace shows the step as caught, then the Fail state that ended the execution
    steps = {step.name: step for step in stack.execution_trace(execution_arn)}
    assert steps["Check run"].status == "caught"
    assert steps["Check run"].error == "UpstreamQuotaExceeded"
    assert steps["Run did not complete"].status == "failed"
    assert steps["Run did not complete"].error == "RunNotCompleted"


def test_the_real_workflow_definition_is_loaded_with_every_function_arn(stack: LocalStack) -> None:
    described = stack.client("stepfunctions").describe_state_machine(stateMachineArn=stack.state_machine_arn)
    definition = described["definition"]
    assert "${" not in definition

    arns = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if "FunctionName" in node:
                arns.add(node["FunctionName"])
            for value in node.values():
                collect(value)

    collect(json.loads(definition))
    # every step is wired in; tools are routed at run time (FunctionName.$), by Check run
    # (the APIs, the cleanup functions, file staging, the reconciler, the webhooks and the event fan-out are
    # not steps; Await model is one in webhook mode only, and this stack polls)
    not_steps = {
        "api",
        "compat_api",
        "clean_up_thread",
        "delete_threads",
        "sweep_threads",
        "stage_file",
        "reconcile_run",
        "openai_webhook",
        "await_model",
        "fan_out_run_events",
        "deliver_run_webhook",
    }
    step_folders = {path.parent.name for path in REAL_FUNCTIONS.glob("*/handler.py")} - not_steps
    tool_folders = {"run_tool"}  # every tool's function runs it; Check run routes to them
    assert arns == {stack.lambdas.function_arn(folder) for folder in step_folders - tool_folders}


def test_resources_match_what_the_functions_expect(stack: LocalStack) -> None:
    dynamodb = stack.client("dynamodb")
    threads = dynamodb.describe_table(TableName=stack.table_names["threads"])["Table"]
    runs = dynamodb.describe_table(TableName=stack.table_names["runs"])["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=stack.table_names["threads"])["TimeToLiveDescription"]

    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    assert threads["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert [index["IndexName"] for index in runs["GlobalSecondaryIndexes"]] == ["by_thread", "active_runs"]
    assert stack.client("s3").head_bucket(Bucket=stack.bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    secret = stack.client("secretsmanager").get_secret_value(
        SecretId=os.environ["THREADRUNNER_OPENAI_SECRET_NAME"]
    )
    assert secret["SecretString"] == "sk-local-test"
    assert os.environ["THREADRUNNER_STATE_MACHINE_ARN"] == stack.state_machine_arn
    assert os.environ["THREADRUNNER_OPENAI_BASE_URL"] == "http://127.0.0.1:9/v1"
    assert "sk-local-test" not in os.environ.values()


def test_the_http_api_delivers_a_v2_event_with_the_token_claims(stack: LocalStack) -> None:
    token = issue_token("alice")

    response = httpx.post(
        f"{stack.api_url}/v1/threads/thr_1/runs?verbose=1&tag=a&tag=b",
        json={"message": "hello"},
        headers={"Authorization": f"Bearer {token}", "X-Trace": "t1"},
        cookies={"session": "s1"},
    )

    assert response.status_code == 200
    assert response.headers["apigw-requestid"]
    event = response.json()
    assert event["version"] == "2.0"
    # the route that starts runs has its own key (its own throttling), as API Gateway routes it
    assert event["routeKey"] == "POST /v1/threads/{thread_id}/runs"
    assert event["rawPath"] == "/v1/threads/thr_1/runs"
    assert event["rawQueryString"] == "verbose=1&tag=a&tag=b"
    assert event["queryStringParameters"] == {"verbose": "1", "tag": "a,b"}
    assert event["pathParameters"] == {"thread_id": "thr_1"}
    assert event["cookies"] == ["session=s1"]
    assert event["headers"]["x-trace"] == "t1"
    assert "cookie" not in event["headers"]
    assert json.loads(event["body"]) == {"message": "hello"}
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"]["method"] == "POST"
    assert context["http"]["path"] == "/v1/threads/thr_1/runs"
    assert context["stage"] == "$default"
    assert context["accountId"] == stack.account
    assert context["requestId"] == response.headers["apigw-requestid"]
    claims = context["authorizer"]["jwt"]["claims"]
    assert claims["sub"] == "alice"
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert all(isinstance(value, str) for value in claims.values())
    assert abs(context["timeEpoch"] / 1000 - time.time()) < 60


def _other_key_token() -> str:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "iat": now, "exp": now + 600}
    return jwt.encode(claims, other, algorithm="RS256")


def _wrong_audience_token() -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "someone-else", "sub": "alice", "iat": now, "exp": now + 600}
    return jwt.encode(claims, local_private_key(), algorithm="RS256")


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no token"),
        pytest.param(lambda: f"Bearer {_other_key_token()}", id="signed by another key"),
        pytest.param(lambda: f"Bearer {issue_token('alice', expires_in=-30)}", id="expired"),
        pytest.param(lambda: f"Bearer {_wrong_audience_token()}", id="wrong audience"),
        pytest.param(lambda: f"Basic {issue_token('alice')}", id="not a bearer token"),
    ],
)
def test_the_http_api_answers_401_without_calling_the_function(
    stack: LocalStack, calls_log: Path, authorization: Any
) -> None:
    before = len(calls(calls_log))
    headers = {} if authorization is None else {"Authorization": authorization()}

    response = httpx.get(f"{stack.api_url}/v1/threads", headers=headers)

    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}
    assert len(calls(calls_log)) == before


def test_paths_outside_v1_answer_404(stack: LocalStack) -> None:
    response = httpx.get(
        f"{stack.api_url}/health", headers={"Authorization": f"Bearer {issue_token('alice')}"}
    )

    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}


def test_only_one_stack_runs_per_process(stack: LocalStack, fake_functions: Path) -> None:
    second = LocalStack(upstream_base_url="http://127.0.0.1:9/v1", api_key="k", functions_dir=fake_functions)

    with pytest.raises(RuntimeError, match="already running"):
        second.start()
    # And the failed start left the running stack alone
    assert stack.client("dynamodb").describe_table(TableName=stack.table_names["runs"])
    assert os.environ["THREADRUNNER_STATE_MACHINE_ARN"] == stack.state_machine_arn
