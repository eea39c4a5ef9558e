"""Names, paths and fixed settings of the CDK app, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from threadrunner.function_kinds import FunctionKind
from threadrunner.run_metrics import NAMESPACE
from threadrunner.tools import registry
from threadrunner.tools.declaration import TOOL_FUNCTION_PREFIX, Capability

SERVICE_NAME = "threadrunner"
METRICS_NAMESPACE = NAMESPACE  # one namespace for every metric: the library defines it
DEFAULT_ENVIRONMENT = "dev"

# Context keys (cdk.json and `-c key=value`).
ENVIRONMENT_CONTEXT_KEY = "env"
ENVIRONMENTS_CONTEXT_KEY = "environments"

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO_ROOT / "functions"
LIBRARY_DIR = REPO_ROOT / "layers" / "threadrunner" / "python" / "threadrunner"
ASSISTANTS_DIR = REPO_ROOT / "assistants"
PYPROJECT = REPO_ROOT / "pyproject.toml"
BUILD_CACHE_DIR = REPO_ROOT / ".build"

# Where the threadrunner layer puts things inside the Lambda (layers are extracted under /opt).
LAYER_ASSISTANTS_DIR = "/opt/assistants"
LAYER_SAMPLE_DATABASE = "/opt/data/sample.db"

HANDLER = "handler.lambda_handler"
OUTPUTS_PREFIX = "outputs/"
UPLOADS_PREFIX = "uploads/"
STAGED_PREFIX = "staged/"  # staged files' own bytes (threadrunner.models.records.STAGED_PREFIX)
MESSAGES_PREFIX = "messages/"  # message bodies too large for DynamoDB (threadrunner.stores.messages)
COMPAT_FILES_PREFIX = "compat/"  # uploads through the Assistants-compatible API (threadrunner.models.records)


TOOL_CODE_FOLDER = "run_tool"  # every tool's Lambda runs functions/run_tool, once per registered tool


def _deployed_name(environment: str, function: str) -> str:
    return f"{SERVICE_NAME}-{environment}-{function.replace('_', '-')}"


class FunctionName(StrEnum):
    """One Lambda per folder in functions/, but run_tool: that one is deployed per tool (``ToolFunction``)."""

    api = "api"
    # /compat/v1: the Assistants-v2-compatible API (threadrunner/compat), beside the API, with its rights.
    compat_api = "compat_api"
    start_run = "start_run"
    check_run = "check_run"
    submit_tool_outputs = "submit_tool_outputs"
    collect_outputs = "collect_outputs"
    cancel_run = "cancel_run"
    finish_run = "finish_run"
    clean_up_thread = "clean_up_thread"
    delete_threads = "delete_threads"
    sweep_threads = "sweep_threads"
    stage_file = "stage_file"
    reconcile_run = "reconcile_run"
    # Wait for the application (run.asl.json): keeps the run's task token for the API's SendTaskSuccess.
    wait_for_application = "wait_for_application"
    # Wait for model with completion "webhook": keeps the run's task token under its upstream response id.
    await_model = "await_model"
    # POST /v1/webhooks/openai: an upstream response ended; resumes the run waiting for it (no JWT).
    openai_webhook = "openai_webhook"
    # The runs table's stream of new run events -> outbound webhook deliveries (SQS) and live push (AppSync).
    fan_out_run_events = "fan_out_run_events"
    # The delivery queue -> one signed Standard Webhooks POST per event and subscription.
    deliver_run_webhook = "deliver_run_webhook"

    @property
    def code_folder(self) -> str:
        return self.value

    @property
    def talks_to_model(self) -> bool:
        return (
            self in MODEL_STEPS
            or self in CLEANUP_FUNCTIONS
            or self in FILE_FUNCTIONS
            or self in REPAIR_FUNCTIONS
        )

    @property
    def kind(self) -> FunctionKind:
        """What it traces and which dependency layers it gets (threadrunner.function_kinds)."""
        if self in (FunctionName.api, FunctionName.compat_api):
            return FunctionKind.api
        if self in EVENT_FUNCTIONS:
            return FunctionKind.events
        return FunctionKind.model if self in MODEL_STEPS else FunctionKind.housekeeping

    @property
    def pascal(self) -> str:
        return "".join(part.title() for part in self.value.split("_"))

    @property
    def asl_placeholder(self) -> str:
        """The ``${...}`` name run.asl.json uses for this function's ARN, e.g. ``StartRunFunctionArn``."""
        return f"{self.pascal}FunctionArn"

    def function_name(self, environment: str) -> str:
        """The name the console shows, e.g. ``threadrunner-prod-check-run``."""
        return _deployed_name(environment, self.value)


@dataclass(frozen=True)
class ToolFunction:
    """A registered tool's own Lambda (functions/run_tool with THREADRUNNER_TOOL_NAME): the registry says
    which exist, so a tool added as one module gets its Lambda, its grants and its route without an edit here."""

    tool: str
    capabilities: tuple[Capability, ...] = ()

    @property
    def value(self) -> str:
        """``tool_<name>``: the function id the library and the local stack use too (``Tool.function_id``)."""
        return f"{TOOL_FUNCTION_PREFIX}{self.tool}"

    @property
    def code_folder(self) -> str:
        return TOOL_CODE_FOLDER

    @property
    def talks_to_model(self) -> bool:
        return False  # a tool never holds the upstream key

    @property
    def kind(self) -> FunctionKind:
        return FunctionKind.tools

    @property
    def pascal(self) -> str:
        # ToolQueryDatabase, as when each tool had its own folder: logical ids (and the deployed Lambdas) stay.
        return "".join(part.title() for part in self.value.split("_"))

    def __str__(self) -> str:
        return self.value

    def function_name(self, environment: str) -> str:
        """e.g. ``threadrunner-prod-tool-query-database``."""
        return _deployed_name(environment, self.value)


def tool_functions() -> tuple[ToolFunction, ...]:
    """One Lambda per tool in the registry, read when called (tests register tools of their own)."""
    return tuple(ToolFunction(tool.name, tool.capabilities) for tool in registry.registered_tools())


LambdaName = FunctionName | ToolFunction


MODEL_STEPS = frozenset(
    {
        FunctionName.start_run,
        FunctionName.check_run,
        FunctionName.submit_tool_outputs,
        FunctionName.collect_outputs,
        FunctionName.cancel_run,
        # After a crashed step it cancels the upstream response, which would keep the conversation locked.
        FunctionName.finish_run,
    }
)
# Thread cleanup (threadrunner.cleanup): they delete the upstream conversation, so they hold the key too.
CLEANUP_FUNCTIONS = frozenset(
    {FunctionName.clean_up_thread, FunctionName.delete_threads, FunctionName.sweep_threads}
)
# Staging uploads (threadrunner.files.staging): it creates the upstream file, so it holds the key too.
FILE_FUNCTIONS = frozenset({FunctionName.stage_file})
# Ending runs whose execution died (threadrunner.run_repair): as Finish run, it cancels upstream responses.
REPAIR_FUNCTIONS = frozenset({FunctionName.reconcile_run})
# Run events after they are logged (threadrunner.run_event_fanout, threadrunner.outbound_webhooks): off the
# run's path, never the model.
EVENT_FUNCTIONS = frozenset({FunctionName.fan_out_run_events, FunctionName.deliver_run_webhook})
# The steps the state machine names in run.asl.json (the tools' Lambdas are routed at run time, by ARN).
WORKFLOW_STEPS = tuple(
    name
    for name in FunctionName
    if name not in (FunctionName.api, FunctionName.compat_api, FunctionName.openai_webhook)
    and name not in CLEANUP_FUNCTIONS
    and name not in FILE_FUNCTIONS
    and name not in REPAIR_FUNCTIONS
    and name not in EVENT_FUNCTIONS
)
TOOL_FUNCTIONS = tool_functions()  # as registered when infra is imported
ALL_FUNCTIONS: tuple[LambdaName, ...] = (*FunctionName, *TOOL_FUNCTIONS)


def stack_name(environment: str) -> str:
    return f"{SERVICE_NAME}-{environment}"


def state_machine_name(environment: str) -> str:
    return f"{SERVICE_NAME}-{environment}-run"


def secret_name(environment: str) -> str:
    return f"{SERVICE_NAME}/{environment}/openai-api-key"


def webhook_secret_name(environment: str) -> str:
    """The upstream's webhook signing secret (``threadrunner webhooks register`` fills it in)."""
    return f"{SERVICE_NAME}/{environment}/openai-webhook-secret"


class OutputName(StrEnum):
    api_url = "ApiUrl"
    state_machine_arn = "StateMachineArn"
    user_pool_id = "UserPoolId"
    user_pool_client_id = "UserPoolClientId"
    secret_name = "SecretName"  # noqa: S105 - the output holding the secret's name, not a secret
    webhook_secret_name = "WebhookSecretName"  # noqa: S105 - the output holding the secret's name
    live_events_http_endpoint = "LiveEventsHttpEndpoint"
    live_events_realtime_endpoint = "LiveEventsRealtimeEndpoint"
    webhook_dead_letters = "RunWebhookDeadLetters"
