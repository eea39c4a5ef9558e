"""Names, paths and fixed settings of the CDK app, in one place."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from threadrunner.run_metrics import NAMESPACE

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
RUN_WORKFLOW_FILE = REPO_ROOT / "infra" / "workflows" / "run.asl.json"

# Where the threadrunner layer puts things inside the Lambda (layers are extracted under /opt).
LAYER_ASSISTANTS_DIR = "/opt/assistants"
LAYER_SAMPLE_DATABASE = "/opt/data/sample.db"

HANDLER = "handler.lambda_handler"
OUTPUTS_PREFIX = "outputs/"
UPLOADS_PREFIX = "uploads/"
STAGED_PREFIX = "staged/"  # staged files' own bytes (threadrunner.models.records.STAGED_PREFIX)
MESSAGES_PREFIX = "messages/"  # message bodies too large for DynamoDB (threadrunner.stores.messages)


TOOL_PREFIX = "tool_"


class FunctionName(StrEnum):
    """One Lambda per folder in functions/."""

    api = "api"
    start_run = "start_run"
    check_run = "check_run"
    tool_get_table_schema = "tool_get_table_schema"
    tool_query_database = "tool_query_database"
    submit_tool_outputs = "submit_tool_outputs"
    collect_outputs = "collect_outputs"
    cancel_run = "cancel_run"
    finish_run = "finish_run"
    clean_up_thread = "clean_up_thread"
    delete_threads = "delete_threads"
    sweep_threads = "sweep_threads"
    stage_file = "stage_file"
    reconcile_run = "reconcile_run"

    @property
    def tool(self) -> str | None:
        """For a tool's own Lambda (functions/tool_<name>), the tool's name."""
        return self.value.removeprefix(TOOL_PREFIX) if self.value.startswith(TOOL_PREFIX) else None

    @property
    def talks_to_model(self) -> bool:
        return (
            self in MODEL_STEPS
            or self in CLEANUP_FUNCTIONS
            or self in FILE_FUNCTIONS
            or self in REPAIR_FUNCTIONS
        )

    @property
    def pascal(self) -> str:
        return "".join(part.title() for part in self.value.split("_"))

    @property
    def asl_placeholder(self) -> str:
        """The ``${...}`` name run.asl.json uses for this function's ARN, e.g. ``StartRunFunctionArn``."""
        return f"{self.pascal}FunctionArn"

    def function_name(self, environment: str) -> str:
        """The name the console shows, e.g. ``threadrunner-prod-check-run``."""
        return f"{SERVICE_NAME}-{environment}-{self.value.replace('_', '-')}"


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
WORKFLOW_STEPS = tuple(
    name
    for name in FunctionName
    if name is not FunctionName.api
    and name not in CLEANUP_FUNCTIONS
    and name not in FILE_FUNCTIONS
    and name not in REPAIR_FUNCTIONS
)
TOOL_FUNCTIONS = tuple(name for name in FunctionName if name.tool is not None)


def stack_name(environment: str) -> str:
    return f"{SERVICE_NAME}-{environment}"


def state_machine_name(environment: str) -> str:
    return f"{SERVICE_NAME}-{environment}-run"


def secret_name(environment: str) -> str:
    return f"{SERVICE_NAME}/{environment}/openai-api-key"


class OutputName(StrEnum):
    api_url = "ApiUrl"
    state_machine_arn = "StateMachineArn"
    user_pool_id = "UserPoolId"
    user_pool_client_id = "UserPoolClientId"
    secret_name = "SecretName"  # noqa: S105 - the output holding the secret's name, not a secret
