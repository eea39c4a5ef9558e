"""Settings from the environment, one small model per concern; handlers compose what they need.

Logic never reads ``os.environ``: it receives these models. Names are ``THREADRUNNER_*``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from threadrunner.hosted_tools import AllowedMcpServer
from threadrunner.models.deferred_model import DeferredModel
from threadrunner.pricing import ModelPrice, default_prices
from threadrunner.workflow.limits import check_history_budget


class _Settings(BaseSettings):
    # Built when first read (settings_...() below), not when defined: a Lambda reads a few of these.
    model_config = SettingsConfigDict(
        env_prefix="THREADRUNNER_", frozen=True, extra="ignore", defer_build=True
    )


class StorageSettings(_Settings):
    threads_table: str = "threadrunner-threads"
    runs_table: str = "threadrunner-runs"
    messages_table: str = "threadrunner-messages"
    idempotency_table: str = "threadrunner-idempotency"
    bucket: str = "threadrunner-files"
    # Message bodies above this size go to S3 (a DynamoDB item stops at 400 KB; most messages are small).
    message_inline_bytes: int = Field(default=32 * 1024, gt=0)


class RunSettings(_Settings):
    """How runs behave: engine, model, polling and limits (per environment, see cdk.json)."""

    environment: str = "dev"
    engine: str = "responses"
    model: str = "gpt-4.1-mini"
    poll_first_seconds: int = Field(default=2, ge=0)
    poll_max_seconds: int = Field(default=20, ge=0)
    # Check run polls about every second inside one invocation while the model call is younger than this
    # (threadrunner/workflow/polling.py); its Lambda's timeout leaves room for it (tests/infra/test_timing.py).
    check_wait_seconds: int = Field(default=40, ge=0, le=60)
    # completion "webhook": Wait for model sleeps until the upstream's webhook, or this long, then polls.
    webhook_fallback_seconds: int = Field(default=60, gt=0, le=3600)
    run_deadline_seconds: int = Field(default=600, gt=0)
    # Polls and tool calls bound a run's history events far below the 25,000 limit (workflow/limits.py).
    max_polls: int = Field(default=400, gt=0, le=2000)
    # More tool calls than this in one run fail it (ToolCallLimitExceeded).
    max_tool_calls_per_run: int = Field(default=250, gt=0)
    # How long a run waits for the application (client tool outputs, approvals) before it ends timed_out.
    client_tool_timeout_seconds: int = Field(default=900, gt=0)
    # A round whose upstream response stays queued this long is cancelled and started again once.
    max_queued_seconds: float = Field(default=120, gt=0)
    thread_max_age_hours: int = Field(default=24, gt=0)
    thread_ttl_days: int = Field(default=30, gt=0)
    # The environment's message limit, under the API's ceiling (models.api_runs.MAX_MESSAGE_CHARS).
    max_message_chars: int = Field(default=400_000, gt=0, le=400_000)
    # Graceful degradation: the engine a run moves to when its engine has an outage ("off": the run fails).
    fallback_engine: str = "off"
    # How long a failing engine is skipped (its circuit open) before one run tries it again.
    breaker_cooling_seconds: int = Field(default=300, ge=0)
    # The chat engine replays our message log trimmed to this many tokens (about four characters each), per
    # model (JSON in THREADRUNNER_CONTEXT_TOKENS), else the default.
    context_tokens: dict[str, int] = Field(default_factory=dict)
    default_context_tokens: int = Field(default=100_000, gt=0)

    def context_budget(self, model: str) -> int:
        return self.context_tokens.get(model, self.default_context_tokens)

    @model_validator(mode="after")
    def _history_fits(self) -> RunSettings:
        check_history_budget(self.max_polls, self.max_tool_calls_per_run)
        return self


class WorkflowSettings(_Settings):
    state_machine_arn: str = ""
    # Tool name -> the ARN of its Lambda (JSON in THREADRUNNER_TOOL_FUNCTIONS); Check run routes calls by it.
    tool_functions: dict[str, str] = Field(default_factory=dict)
    region: str = Field(default="us-east-1", validation_alias="AWS_REGION")


class CleanupSettings(_Settings):
    """Deleting threads: the API hands the work to the delete_threads Lambda (which may talk upstream)."""

    delete_threads_function: str = ""
    # After this many failed attempts the sweep stops retrying a cleanup; its record stays for a person.
    max_cleanup_attempts: int = Field(default=5, gt=0)


class RepairSettings(_Settings):
    """Repairing runs whose execution died (threadrunner.run_repair): the reconciler and the sweep."""

    # The sweep leaves younger runs and locks alone: a run may be between taking its thread's lock and its
    # StartExecution (the API answers within 30 s), and the reconciler may be on it already.
    repair_grace_seconds: int = Field(default=300, ge=0)


class EngineUpstream(DeferredModel):
    """One engine's own upstream, where it differs from the shared one (e.g. chat on a vLLM server)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str | None = None
    secret_name: str | None = None
    model: str | None = None  # the model that server runs; None: the assistant's / environment's


class FileSettings(_Settings):
    """Uploads (presigned POST, staged upstream) and the files runs generate (per environment, see cdk.json)."""

    # Local mode only: where presigned URLs point (the local S3 endpoint); None in AWS (real S3 URLs).
    s3_endpoint_url: str | None = None
    upload_url_seconds: int = Field(default=900, gt=0, le=7 * 24 * 3600)
    download_url_seconds: int = Field(default=3600, gt=0, le=7 * 24 * 3600)
    max_file_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    allowed_file_types: list[str] = Field(
        default_factory=lambda: [
            "text/csv",
            "text/plain",
            "text/markdown",
            "application/json",
            "application/pdf",
            "image/png",
            "image/jpeg",
        ]
    )
    max_files_per_run: int = Field(default=10, gt=0)
    user_quota_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    # The chat engine keeps no files upstream: it inlines text files into the message, up to this many bytes
    # per run (what the files declared), well inside the model's context budget (about four bytes a token).
    chat_inline_bytes: int = Field(default=256 * 1024, gt=0)
    # Upstream copies expire by themselves (Files API ``expires_after``); 0: the upstream does not support it.
    upstream_file_seconds: int = Field(default=7 * 24 * 3600, ge=0, le=30 * 24 * 3600)


class UpstreamSettings(_Settings):
    """Where the model lives. The key itself is never here: it is read from Secrets Manager."""

    openai_secret_name: str = "threadrunner/openai-api-key"  # noqa: S105 - a name, not a secret
    # The upstream's webhook signing secret (completion "webhook"; POST /v1/webhooks/openai).
    openai_webhook_secret_name: str = "threadrunner/openai-webhook-secret"  # noqa: S105 - a name
    openai_base_url: str | None = None
    # One attempt of one upstream call (a chat completion waits for the whole answer within it).
    openai_timeout_seconds: float = Field(default=25.0, gt=0)
    # engine name -> its own base URL, key secret and model (JSON in THREADRUNNER_ENGINE_UPSTREAMS).
    engine_upstreams: dict[str, EngineUpstream] = Field(default_factory=dict)
    # Retries of one upstream call (engines/retry.py): 429s honouring Retry-After, and for calls that create
    # nothing 5xx and lost reads. A call lasts at most attempts x timeout + budget, below the model steps'
    # Lambda timeout (tests/infra/test_timing.py); the workflow retries the step after that.
    retry_max_attempts: int = Field(default=2, ge=1, le=10)
    retry_base_seconds: float = Field(default=0.5, ge=0)
    retry_max_backoff_seconds: float = Field(default=4.0, ge=0)
    retry_max_retry_after_seconds: float = Field(default=10.0, ge=0)
    retry_budget_seconds: float = Field(default=10.0, ge=0)

    def base_url_for(self, engine: str) -> str | None:
        upstream = self.engine_upstreams.get(engine)
        return upstream.base_url if upstream and upstream.base_url else self.openai_base_url

    def secret_name_for(self, engine: str) -> str:
        upstream = self.engine_upstreams.get(engine)
        return upstream.secret_name if upstream and upstream.secret_name else self.openai_secret_name

    def model_for(self, engine: str) -> str | None:
        upstream = self.engine_upstreams.get(engine)
        return upstream.model if upstream else None


class ToolSettings(_Settings):
    assistants_dir: Path = Path(__file__).resolve().parents[4] / "assistants"
    # The SQL tools' database: a SQLAlchemy URL (tests, local mode), else the name of a Secrets Manager
    # secret holding one, else the bundled SQLite sample (built into a cache directory when no path is set).
    database_url: SecretStr | None = None
    database_secret_name: str | None = None
    sample_database_path: Path | None = None
    tool_output_max_chars: int = Field(default=16_000, gt=0)
    # Wall-clock budget of one tool call, below the tool Lambda's 60 s timeout.
    tool_timeout_seconds: float = Field(default=30.0, gt=0)
    sql_max_rows: int = Field(default=1000, gt=0)
    sql_timeout_seconds: float = Field(default=5.0, gt=0)
    # The MCP servers assistants may name (JSON in THREADRUNNER_MCP_SERVERS, from cdk.json mcp_servers):
    # labels, URLs and secret names only (threadrunner.hosted_tools).
    mcp_servers: list[AllowedMcpServer] = Field(default_factory=list)


class CostSettings(_Settings):
    """Prices and per-user daily budgets (per environment, see cdk.json)."""

    # Added to / overriding threadrunner/prices.json (JSON in THREADRUNNER_PRICES), USD per 1M tokens.
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    # Per user per UTC day; None: no budget of that kind.
    daily_token_budget: int | None = Field(default=None, gt=0)
    daily_cost_budget_usd: float | None = Field(default=None, gt=0)
    usage_retention_days: int = Field(default=400, gt=0)
    max_usage_days: int = Field(default=92, gt=0)  # the widest range GET /v1/usage answers

    @property
    def price_table(self) -> dict[str, ModelPrice]:
        return {**default_prices(), **self.prices}


class ApiSettings(_Settings):
    """What the API enforces per caller (per environment, see cdk.json)."""

    # Runs a user may create per minute (queued ones too); None: no limit of ours (API Gateway still throttles).
    runs_per_minute: int | None = Field(default=None, gt=0)
    # How long a repeat with the same Idempotency-Key gets the first answer back.
    idempotency_expires_seconds: int = Field(default=24 * 3600, gt=0, le=7 * 24 * 3600)


class OperatorSettings(_Settings):
    """Who may use the kill switch (/v1/admin/...): a JWT whose cognito:groups holds the group, or whose
    scope holds the scope."""

    admin_group: str = "threadrunner-admins"
    admin_scope: str = "threadrunner/admin"


@cache
def storage_settings() -> StorageSettings:
    return StorageSettings()


@cache
def run_settings() -> RunSettings:
    return RunSettings()


@cache
def workflow_settings() -> WorkflowSettings:
    return WorkflowSettings()


@cache
def cleanup_settings() -> CleanupSettings:
    return CleanupSettings()


@cache
def repair_settings() -> RepairSettings:
    return RepairSettings()


@cache
def upstream_settings() -> UpstreamSettings:
    return UpstreamSettings()


@cache
def tool_settings() -> ToolSettings:
    return ToolSettings()


@cache
def file_settings() -> FileSettings:
    return FileSettings()


@cache
def cost_settings() -> CostSettings:
    return CostSettings()


@cache
def operator_settings() -> OperatorSettings:
    return OperatorSettings()


@cache
def api_settings() -> ApiSettings:
    return ApiSettings()


def reset_settings() -> None:
    """Forget cached settings (local mode and tests change the environment)."""
    for cached in (
        storage_settings,
        run_settings,
        workflow_settings,
        upstream_settings,
        tool_settings,
        cleanup_settings,
        repair_settings,
        file_settings,
        cost_settings,
        operator_settings,
        api_settings,
    ):
        cached.cache_clear()
