"""The one place for what every threadrunner Lambda shares: runtime, layers, logging, tracing, settings."""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import Acknowledgment, ArnFormat, Duration, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from threadrunner.function_kinds import KIND_VARIABLE

from infra.bundling import DEPENDENCY_LAYERS, DependencyLayer, dependency_layers_code, library_layer_code
from infra.config import EnvironmentConfig
from infra.constants import (
    FUNCTIONS_DIR,
    HANDLER,
    LAYER_ASSISTANTS_DIR,
    LAYER_SAMPLE_DATABASE,
    METRICS_NAMESPACE,
    SERVICE_NAME,
    FunctionName,
    LambdaName,
)
from infra.constructs.log_groups import LogGroups
from infra.constructs.storage import Storage
from infra.constructs.upstream_secret import UpstreamSecret

# Python 3.12 on x86_64: the platform the dependency layer's wheels are chosen for (infra/bundling.py).
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64
# HTTP API integrations give up at 30 s. Workflow tasks give a Lambda 90 s (run.asl.json's TimeoutSeconds),
# which must cover its INIT (up to 10 s) and its timeout. One upstream call may take its retries' attempts
# times the client timeout plus their waits (threadrunner.settings.UpstreamSettings): the functions that talk
# to the model get room for that and the rest of their work; Check run also for polling inside one invocation
# (check_wait_seconds, its task's TimeoutSeconds is 150 s). tests/infra/test_timing.py holds all of it.
API_TIMEOUT = Duration.seconds(25)
STEP_TIMEOUT = Duration.seconds(60)
MODEL_STEP_TIMEOUT = Duration.seconds(75)
MEMORY_MB = 256
# The openai SDK and pydantic models make the model steps heavier; more memory also means more CPU at init.
MODEL_STEP_MEMORY_MB = 512

_APPLICATION_LOG_LEVEL = {
    "DEBUG": lambda_.ApplicationLogLevel.DEBUG,
    "INFO": lambda_.ApplicationLogLevel.INFO,
    "WARNING": lambda_.ApplicationLogLevel.WARN,
    "ERROR": lambda_.ApplicationLogLevel.ERROR,
}


def _file_settings(config: EnvironmentConfig) -> dict[str, str]:
    """threadrunner.settings.FileSettings, from the environment's ``files`` (the API checks the limits,
    staging checks them again, Collect outputs and the API presign)."""
    files = config.files
    return {
        "THREADRUNNER_MAX_FILE_BYTES": str(files.max_file_bytes),
        "THREADRUNNER_ALLOWED_FILE_TYPES": json.dumps(files.allowed_types),
        "THREADRUNNER_MAX_FILES_PER_RUN": str(files.max_files_per_run),
        "THREADRUNNER_CHAT_INLINE_BYTES": str(files.chat_inline_bytes),
        "THREADRUNNER_USER_QUOTA_BYTES": str(files.user_quota_bytes),
        "THREADRUNNER_UPLOAD_URL_SECONDS": str(files.upload_url_seconds),
        "THREADRUNNER_DOWNLOAD_URL_SECONDS": str(files.download_url_seconds),
        "THREADRUNNER_UPSTREAM_FILE_SECONDS": str(files.upstream_file_days * 24 * 3600),
    }


def _cost_environment(config: EnvironmentConfig) -> dict[str, str]:
    """Budgets and price overrides (threadrunner.settings.CostSettings), only those the environment sets."""
    environment = {}
    if config.prices:
        prices = {model: price.model_dump() for model, price in config.prices.items()}
        environment["THREADRUNNER_PRICES"] = json.dumps(prices, sort_keys=True, separators=(",", ":"))
    if config.daily_token_budget is not None:
        environment["THREADRUNNER_DAILY_TOKEN_BUDGET"] = str(config.daily_token_budget)
    if config.daily_cost_budget_usd is not None:
        environment["THREADRUNNER_DAILY_COST_BUDGET_USD"] = str(config.daily_cost_budget_usd)
    return environment


def _timeout(name: LambdaName, config: EnvironmentConfig) -> Duration:
    if name in (FunctionName.api, FunctionName.compat_api):
        return API_TIMEOUT
    if name is FunctionName.check_run:
        # Check run may poll inside one invocation for up to check_wait_seconds, then make one more call.
        return Duration.seconds(MODEL_STEP_TIMEOUT.to_seconds() + config.check_wait_seconds)
    return MODEL_STEP_TIMEOUT if name.talks_to_model else STEP_TIMEOUT


class FunctionFactory(Construct):
    """Builds each Lambda with the shared settings, its own role and log group, the threadrunner layer and the
    dependency layers of its kind (infra/bundling.py)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        storage: Storage,
        upstream_secret: UpstreamSecret,
        log_groups: LogGroups,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._log_groups = log_groups
        self._upstream_secret = upstream_secret
        self.library_layer = self._layer(
            "LibraryLayer", library_layer_code(), "threadrunner library, assistants, sample database"
        )
        # "DependencyLayer" was every function's one layer: the core one keeps its id.
        self.dependency_layers = {
            layer: self._layer(
                "DependencyLayer" if layer is DependencyLayer.core else f"{layer.title()}DependencyLayer",
                code,
                f"threadrunner runtime dependencies: {layer}",
            )
            for layer, code in dependency_layers_code().items()
        }
        self._environment = {
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": config.log_level,
            "THREADRUNNER_ENVIRONMENT": config.name,
            "THREADRUNNER_THREADS_TABLE": storage.threads_table.table_name,
            "THREADRUNNER_RUNS_TABLE": storage.runs_table.table_name,
            "THREADRUNNER_MESSAGES_TABLE": storage.messages_table.table_name,
            "THREADRUNNER_BUCKET": storage.bucket.bucket_name,
            "THREADRUNNER_ASSISTANTS_DIR": LAYER_ASSISTANTS_DIR,
            "THREADRUNNER_SAMPLE_DATABASE_PATH": LAYER_SAMPLE_DATABASE,
            "THREADRUNNER_ENGINE": config.engine,
            "THREADRUNNER_MODEL": config.model,
            "THREADRUNNER_POLL_FIRST_SECONDS": str(config.poll_first_seconds),
            "THREADRUNNER_POLL_MAX_SECONDS": str(config.poll_max_seconds),
            "THREADRUNNER_CHECK_WAIT_SECONDS": str(config.check_wait_seconds),
            "THREADRUNNER_WEBHOOK_FALLBACK_SECONDS": str(config.webhook_fallback_seconds),
            "THREADRUNNER_RUN_DEADLINE_SECONDS": str(config.run_deadline_seconds),
            "THREADRUNNER_MAX_POLLS": str(config.max_polls),
            "THREADRUNNER_MAX_TOOL_CALLS_PER_RUN": str(config.max_tool_calls_per_run),
            "THREADRUNNER_CLIENT_TOOL_TIMEOUT_SECONDS": str(config.client_tool_timeout_seconds),
            "THREADRUNNER_MAX_MESSAGE_CHARS": str(config.max_message_chars),
            "THREADRUNNER_MAX_QUEUED_SECONDS": str(config.max_queued_seconds),
            "THREADRUNNER_THREAD_MAX_AGE_HOURS": str(config.thread_max_age_hours),
            "THREADRUNNER_THREAD_TTL_DAYS": str(config.thread_ttl_days),
            "THREADRUNNER_FALLBACK_ENGINE": config.fallback_engine,
            "THREADRUNNER_BREAKER_COOLING_SECONDS": str(config.breaker_cooling_seconds),
            **_file_settings(config),
            "THREADRUNNER_ADMIN_GROUP": config.admin_group,
            **_cost_environment(config),
        }
        if config.context_tokens:
            self._environment["THREADRUNNER_CONTEXT_TOKENS"] = json.dumps(config.context_tokens)
        if config.mcp_servers:
            # Labels, URLs and secret names (the API refuses other servers; the model steps read the secrets).
            self._environment["THREADRUNNER_MCP_SERVERS"] = json.dumps(
                [server.model_dump(mode="json", exclude_none=True) for server in config.mcp_servers]
            )
        # The secret's ARN, never its value: the model steps read the key at run time.
        self._model_environment = {"THREADRUNNER_OPENAI_SECRET_NAME": upstream_secret.secret.secret_arn}
        if config.openai_base_url is not None:
            self._model_environment["THREADRUNNER_OPENAI_BASE_URL"] = str(config.openai_base_url)
        if config.engine_upstreams:
            # Secret names only; their values are read at run time like the environment's key.
            self._model_environment["THREADRUNNER_ENGINE_UPSTREAMS"] = json.dumps(
                {
                    engine: upstream.model_dump(mode="json", exclude_none=True)
                    for engine, upstream in config.engine_upstreams.items()
                }
            )

    def create(self, name: LambdaName, *, environment: Mapping[str, str] | None = None) -> lambda_.Function:
        """The Lambda for ``functions/<name>/handler.py`` (a tool's: functions/run_tool); model steps also get
        the upstream secret."""
        construct_id = f"{name.pascal}Function"
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"threadrunner {self._config.name} {name.value} Lambda",
        )
        log_group = self._log_groups.create(self, f"{construct_id}Logs")
        # Instead of the AWSLambdaBasicExecutionRole managed policy: writes to this log group only.
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            construct_id,
            function_name=name.function_name(self._config.name),
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=lambda_.Code.from_asset(
                str(FUNCTIONS_DIR / name.code_folder), exclude=["__pycache__", "*.pyc"]
            ),
            memory_size=MODEL_STEP_MEMORY_MB if name.talks_to_model else MEMORY_MB,
            timeout=_timeout(name, self._config),
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=_APPLICATION_LOG_LEVEL[self._config.log_level],
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=log_group,
            layers=[
                self.library_layer,
                *(self.dependency_layers[layer] for layer in DEPENDENCY_LAYERS[name.kind]),
            ],
            role=role,
            environment={
                **self._environment,
                KIND_VARIABLE: name.kind.value,
                **(self._model_environment if name.talks_to_model else {}),
                **(environment or {}),
            },
        )
        if name.talks_to_model:
            self._upstream_secret.grant_read(function)
            self._grant_mcp_secrets(function)
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="Active tracing: xray:PutTraceSegments and PutTelemetryRecords take no resource ARN.",
            ),
        )
        Validations.of(function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason="Pinned to Python 3.12: the dependency layer holds cp312 wheels (infra/bundling.py).",
            ),
        )
        return function

    def _grant_mcp_secrets(self, function: lambda_.Function) -> None:
        """GetSecretValue on the allow-listed MCP servers' header secrets, exactly those (a secret known by
        name: its ARN ends in a random six-character suffix)."""
        names = sorted({server.secret_name for server in self._config.mcp_servers if server.secret_name})
        if not names:
            return
        stack = Stack.of(self)
        arns = [
            name
            if name.startswith("arn:")
            else stack.format_arn(
                service="secretsmanager",
                resource="secret",
                resource_name=f"{name}-??????",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for name in names
        ]
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=arns)
        )

    def _layer(self, construct_id: str, code: lambda_.Code, description: str) -> lambda_.LayerVersion:
        return lambda_.LayerVersion(
            self,
            construct_id,
            code=code,
            description=description,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            removal_policy=self._config.cdk_removal_policy,
        )
