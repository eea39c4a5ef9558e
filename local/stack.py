"""The local stack: moto for DynamoDB, S3, Secrets Manager and Step Functions, the same handlers called in
process, and the HTTP API on 127.0.0.1, wired like the CDK stack wires the real ones. ``threadrunner local``
serves it (local/serve.py); its state machine's definition is rendered by local/workflow_definition.py."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

import boto3
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws
from moto.stepfunctions.parser.utils import TMP_THREADS as EXECUTION_THREADS  # one per execution
from pydantic import SecretStr
from threadrunner import aws, cleanup, run_repair
from threadrunner.assistant_validation import validate_assistants
from threadrunner.hosted_tools import HostedToolPolicy
from threadrunner.http.gateway_routes import OPENAI_WEBHOOK
from threadrunner.run_metrics import NAMESPACE
from threadrunner.services import context as api_context
from threadrunner.settings import RunSettings, ToolSettings, reset_settings, run_settings
from threadrunner.workflow import context as step_context

from infra.workflows import Completion, run_workflow_definition
from local.atomic_dynamodb import atomic_dynamodb
from local.cli_knowledge import sync_local as sync_local_knowledge
from local.execution_events import deliver_status_changes
from local.http_api import HttpApi
from local.lambdas import Invocation, LambdaDispatch
from local.resources import create_tables
from local.s3_copies import copies_send_events
from local.s3_endpoint import S3Endpoint
from local.trace import TraceStep, execution_trace
from local.workflow_definition import render_definition

REPO_ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
NAME = "threadrunner-local"
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
# Variables that would send boto3 or the openai SDK somewhere else than moto and the secret.
_HIDDEN_ENVIRONMENT = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)
# As infra/constructs/functions.py sets them (not imported: local mode installs no CDK): Check run gets room
# to poll inside one invocation for check_wait_seconds, then make one more upstream call.
STEP_TIMEOUT_SECONDS = 60
MODEL_STEP_TIMEOUT_SECONDS = 75


def function_timeout_seconds(folder: str) -> float:
    if folder == "check_run":
        return MODEL_STEP_TIMEOUT_SECONDS + run_settings().check_wait_seconds
    return STEP_TIMEOUT_SECONDS


class LocalStack:
    """Everything the deployed service has, in this process. One at a time: moto is process-global.

    ``start()`` changes ``os.environ`` (fake AWS credentials, the ``THREADRUNNER_*`` variables CDK would
    set on the functions) and ``stop()`` puts it back as it was.
    """

    _active: ClassVar[LocalStack | None] = None
    _active_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        upstream_base_url: str,
        api_key: str,
        port: int = 0,
        overrides: dict[str, str] | None = None,
        functions_dir: Path = REPO_ROOT / "functions",
        completion: Completion = "poll",
        definition_path: Path | None = None,
    ) -> None:
        self.region = REGION
        self.account = ACCOUNT
        self.upstream_base_url = upstream_base_url
        # How runs learn that a model call ended (infra/workflows): "webhook" registers the local webhook
        # endpoint with the upstream at start (as `threadrunner webhooks register` does after a deploy).
        self.completion = completion
        self.definition_path = definition_path  # None: the real workflow for ``completion``
        self.overrides = dict(overrides or {})
        self.functions_dir = functions_dir
        self.lambdas = LambdaDispatch(
            functions_dir, region=REGION, account=ACCOUNT, timeout_for=function_timeout_seconds
        )
        self.table_names: dict[str, str] = {}  # logical name -> table name, once started
        self.bucket = f"{NAME}-files"
        self.secret_name = "threadrunner/local/openai-api-key"  # noqa: S105 - a name, not a secret
        self.webhook_secret_name = "threadrunner/local/openai-webhook-secret"  # noqa: S105 - a name
        self.state_machine_name = f"{NAME}-run"
        self.state_machine_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{self.state_machine_name}"
        self._api_key = SecretStr(api_key)
        # Local-only routes, outside /v1/ and the deployed API: the schedule and the stream have no local
        # equivalent, so `threadrunner sweep` asks for a sweep here.
        self._http = HttpApi(
            self._invoke_route,
            account_id=ACCOUNT,
            port=port,
            local_routes={"/_local/sweep": self.sweep},
            examples_dir=REPO_ROOT / "examples",
        )
        # Presigned URLs (uploads, generated files) point here; it checks them as S3 does and uses moto.
        self.s3_endpoint = S3Endpoint(
            region=REGION,
            account=ACCOUNT,
            credentials=_environment_credentials,
            s3=lambda: self.client("s3"),
            on_created=self._object_created,
        )
        self._running: ExitStack | None = None

    @property
    def api_url(self) -> str:
        return self._http.url

    def start(self) -> LocalStack:
        # Powertools warns on every invocation of a step that emits no metric; in Lambda that is a log line.
        warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
        with ExitStack() as undo:
            self._claim_process()
            # Fresh handlers on every start: a cold start, and no dispatch closed by an earlier stop().
            self.lambdas = LambdaDispatch(
                self.functions_dir, region=REGION, account=ACCOUNT, timeout_for=function_timeout_seconds
            )
            undo.callback(self._release_process)
            undo.callback(forget_cached_clients)  # last on stop: nothing keeps pointing at moto
            undo.enter_context(mock.patch.dict(os.environ, self._environment()))
            for name in _HIDDEN_ENVIRONMENT:
                os.environ.pop(name, None)
            # Before anything serves: a typo'd key or tool stops the start, not a run (file, line, key).
            tools = ToolSettings()
            # Hosted tools as synth checks them: against the engine and the MCP allow-list (overrides).
            policy = HostedToolPolicy(engine=RunSettings().engine, mcp_servers=tuple(tools.mcp_servers))
            validate_assistants(tools.assistants_dir, policy)
            undo.enter_context(mock_aws(config=MOTO_CONFIG))
            # Inside the mock: it stops before moto does, so no late request can reach AWS.
            undo.enter_context(self.s3_endpoint)
            undo.enter_context(
                copies_send_events(
                    bucket=self.bucket, region=REGION, account=ACCOUNT, on_created=self._object_created
                )
            )
            os.environ["THREADRUNNER_S3_ENDPOINT_URL"] = self.s3_endpoint.url
            undo.enter_context(atomic_dynamodb())
            interpreter_log = logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component")
            interpreter_log.addFilter(_drop_failure_events)
            undo.callback(interpreter_log.removeFilter, _drop_failure_events)
            forget_cached_clients()
            self._create_resources()
            undo.enter_context(self.lambdas.patch_moto())
            # The reconciler's rule: moto sends no status-change events, so they are delivered from here.
            undo.enter_context(deliver_status_changes(self.state_machine_arn, self.lambdas))
            undo.callback(self._stop_executions)
            undo.enter_context(self._http)
            self._register_webhook()
            # Knowledge documents into the upstream's vector stores, as `threadrunner knowledge sync` after a deploy.
            sync_local_knowledge(
                upstream_base_url=self.upstream_base_url,
                api_key=self._api_key.get_secret_value(),
                runs_table=boto3.resource("dynamodb", region_name=REGION).Table(self.table_names["runs"]),
                s3=self.client("s3"),
            )
            self._running = undo.pop_all()
        return self

    def stop(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.close()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]

    def execution_trace(self, execution_arn: str) -> list[TraceStep]:
        return execution_trace(self.client("stepfunctions"), execution_arn)

    def wait_for_execution(self, execution_arn: str, *, timeout: float = 30.0) -> dict[str, Any]:
        """Poll until the execution leaves RUNNING; returns DescribeExecution's answer."""
        client = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            execution: dict[str, Any] = client.describe_execution(executionArn=execution_arn)
            if execution["status"] != "RUNNING":
                return execution
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still running after {timeout} s")
            time.sleep(0.02)

    def _environment(self) -> dict[str, str]:
        """What CDK sets on the functions (infra/constructs), pointed at the local resources."""
        fake_credentials = "testing"
        return {
            "AWS_ACCESS_KEY_ID": fake_credentials,
            "AWS_SECRET_ACCESS_KEY": fake_credentials,
            "AWS_SESSION_TOKEN": fake_credentials,
            "AWS_SECURITY_TOKEN": fake_credentials,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "POWERTOOLS_SERVICE_NAME": "threadrunner",
            "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "THREADRUNNER_ENVIRONMENT": "local",
            "THREADRUNNER_BUCKET": self.bucket,
            "THREADRUNNER_STATE_MACHINE_ARN": self.state_machine_arn,
            "THREADRUNNER_OPENAI_SECRET_NAME": self.secret_name,
            "THREADRUNNER_OPENAI_WEBHOOK_SECRET_NAME": self.webhook_secret_name,
            "THREADRUNNER_OPENAI_BASE_URL": self.upstream_base_url,
            # The API hands deletes to this Lambda (an asynchronous invoke, in process here).
            "THREADRUNNER_DELETE_THREADS_FUNCTION": self.lambdas.function_arn("delete_threads"),
            # As CDK wires Check run: each registered tool's own Lambda (functions/run_tool's code) by ARN.
            "THREADRUNNER_TOOL_FUNCTIONS": json.dumps(self.lambdas.tool_functions()),
            **self.overrides,
        }

    def _create_resources(self) -> None:
        self.table_names = create_tables(self.client("dynamodb"), NAME)
        # StorageSettings reads THREADRUNNER_<LOGICAL NAME>_TABLE; patch.dict in start() restores these too.
        os.environ.update(
            {f"THREADRUNNER_{logical.upper()}_TABLE": name for logical, name in self.table_names.items()}
        )
        self.client("s3").create_bucket(Bucket=self.bucket)
        secrets = self.client("secretsmanager")
        secrets.create_secret(Name=self.secret_name, SecretString=self._api_key.get_secret_value())
        # As CDK creates it: empty until the endpoint is registered (webhook mode, below).
        secrets.create_secret(Name=self.webhook_secret_name, SecretString='{"webhook_secret": ""}')
        workflow = (
            run_workflow_definition(self.completion)
            if self.definition_path is None
            else self.definition_path.read_text()
        )
        definition = render_definition(workflow, self.lambdas.function_arn)
        self.client("stepfunctions").create_state_machine(
            name=self.state_machine_name,
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/{self.state_machine_name}",
            type="STANDARD",
        )

    @property
    def webhook_url(self) -> str:
        return f"{self.api_url}{OPENAI_WEBHOOK.path}"

    def webhook_secret(self) -> str:
        """The signing secret the upstream gave this stack's webhook endpoint (webhook mode)."""
        stored = self.client("secretsmanager").get_secret_value(SecretId=self.webhook_secret_name)
        return str(json.loads(stored["SecretString"])["webhook_secret"])

    def _register_webhook(self) -> None:
        """completion "webhook": the upstream signs its webhooks with the secret it gives this endpoint, kept
        in (moto's) Secrets Manager as after `threadrunner webhooks register`. Poll mode registers nothing."""
        if self.completion != "webhook":
            return
        from openai import OpenAI  # only in webhook mode: local start stays light

        from local.webhook_registration import register

        with OpenAI(
            base_url=self.upstream_base_url, api_key=self._api_key.get_secret_value(), max_retries=0
        ) as upstream:
            register(
                upstream,
                self.client("secretsmanager"),
                name=NAME,
                url=self.webhook_url,
                secret_name=self.webhook_secret_name,
            )

    def sweep(self) -> Invocation:
        """What the schedule does in AWS: invoke sweep_threads once (runs and locks, expired threads)."""
        return self.lambdas.invoke(self.lambdas.function_name("sweep_threads"), {})

    def _object_created(self, event: dict[str, Any]) -> None:
        """The EventBridge rule CDK configures: Object Created in the bucket under uploads/ -> stage_file."""
        detail = event["detail"]
        if detail["bucket"]["name"] == self.bucket and detail["object"]["key"].startswith(UPLOADS_PREFIX):
            self.lambdas.invoke(self.lambdas.function_name("stage_file"), event)

    def _invoke_route(self, folder: str, event: dict[str, Any]) -> Any:
        return self.lambdas.invoke(self.lambdas.function_name(folder), event)

    def abort_executions(self, cause: str = "aborted by the local stack", *, timeout: float = 30) -> None:
        """Abort every running execution and wait until nothing of them goes on: no execution running, no
        interpreter thread alive, no handler running (tests call this between scenarios so that no leftover
        run talks to the next one's upstream). Their runs end failed (the reconciler, as in AWS).

        One pass is not enough: a handler that ends after the listing may start a successor's execution
        (Finish run hands the thread over), and a stopped interpreter finishes the task it is in, then
        notices the stop; so it repeats until one pass finds all three quiet."""
        client = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            running = [
                execution["executionArn"]
                for page in client.get_paginator("list_executions").paginate(
                    stateMachineArn=self.state_machine_arn, statusFilter="RUNNING"
                )
                for execution in page["executions"]
            ]
            for execution_arn in running:
                self._stop_execution(client, execution_arn, cause)
            _interrupt_task_token_waits()
            interpreters = [thread for thread in EXECUTION_THREADS if thread.is_alive()]
            for thread in interpreters:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
            idle = self.lambdas.wait_idle(timeout=max(0.0, deadline - time.monotonic()))
            if not running and not interpreters and idle:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"executions still running {timeout} s after they were aborted")

    @staticmethod
    def _stop_execution(client: Any, execution_arn: str, cause: str, attempts: int = 50) -> None:
        # moto cannot stop an execution whose interpreter thread has not set itself up yet
        # (AttributeError inside moto): that is a matter of milliseconds, so try again.
        for _ in range(attempts - 1):
            try:
                client.stop_execution(executionArn=execution_arn, cause=cause)
                return
            except AttributeError:
                time.sleep(0.02)
        client.stop_execution(executionArn=execution_arn, cause=cause)

    def _stop_executions(self) -> None:
        """Abort what still runs and let running handlers finish, so none outlives moto and reaches AWS."""
        self.abort_executions(cause="local stack stopped")
        self.lambdas.close(timeout=10)

    def _claim_process(self) -> None:
        with LocalStack._active_lock:
            if LocalStack._active is not None:
                raise RuntimeError(
                    "a LocalStack is already running in this process (moto mocks AWS process-wide): "
                    "stop it first"
                )
            LocalStack._active = self

    def _release_process(self) -> None:
        with LocalStack._active_lock:
            LocalStack._active = None


def _environment_credentials() -> tuple[str, str]:
    """The fake credentials start() puts in the environment (what presigned URLs are signed with)."""
    return os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]


def _drop_failure_events(record: logging.LogRecord) -> bool:
    """moto logs every task failure at ERROR, caught or not; the execution history (and trace) has them."""
    return not record.getMessage().startswith("Exception=FailureEventException")


def _interrupt_task_token_waits() -> None:
    """A stopped execution's ``.waitForTaskToken`` task (Wait for the application) would go on waiting in
    its moto thread until its timeout: wake it, as AWS ends the task with the execution."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[ACCOUNT][REGION]
    for machine in list(backend.state_machines):
        for execution in list(machine.executions):
            environment = getattr(getattr(execution, "exec_worker", None), "env", None)
            if environment is None or environment.is_running():  # only the stopped ones
                continue
            pool = getattr(getattr(environment, "callback_pool_manager", None), "_pool", {})
            for endpoint in list(pool.values()):
                endpoint.interrupt_all()


def forget_cached_clients() -> None:
    """Settings, boto3 clients and cached secrets are per process: drop them when the world changes."""
    reset_settings()
    aws.reset_clients()
    parameters.clear_caches()
    api_context.default_context.cache_clear()
    step_context.default_context.cache_clear()
    cleanup.default_context.cache_clear()
    run_repair.default_context.cache_clear()


UPLOADS_PREFIX = "uploads/"  # the EventBridge rule's key prefix (infra/constructs/files.py)
