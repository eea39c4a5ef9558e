"""Per-environment settings from cdk.json (``context.environments``), validated before anything is built."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    field_validator,
    model_validator,
)
from threadrunner.files.types import KNOWN_TYPES
from threadrunner.hosted_tools import AllowedMcpServer, HostedToolPolicy, https_url
from threadrunner.models.run_events import RunEventType
from threadrunner.pricing import ModelPrice, default_prices, price_for
from threadrunner.workflow.limits import check_history_budget

from infra.workflows import Completion

# run.asl.json stops every execution at 7200 s: a run's own deadline must end it well before that.
_MAX_RUN_DEADLINE_SECONDS = 6000
# CloudWatch Logs accepts only these retention periods (jsii enums carry names, not the day counts).
_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}

Origin = Annotated[str, Field(pattern=r"^(\*|https?://[^/\s]+)$")]


def _redirect_url(url: str) -> str:
    """Where Cognito may send a browser back with an authorization code: https, or plain http to localhost
    only (a developer's machine); no fragment (OAuth 2.0 forbids one in a redirect URI)."""
    parts = urlsplit(url)
    secure = parts.scheme == "https" and bool(parts.hostname)
    local = parts.scheme == "http" and parts.hostname == "localhost"
    if not (secure or local) or parts.fragment or any(c.isspace() for c in url):
        raise ValueError("must be an https:// URL (http:// only for localhost), without a fragment")
    return url


RedirectUrl = Annotated[str, AfterValidator(_redirect_url)]


# Run webhooks: https only (the signature proves who sent a delivery, not who reads it), to a host, with no
# credentials in the URL (they would sit in the template and in every Lambda's settings).
WebhookUrl = Annotated[str, AfterValidator(https_url)]


class ConfigError(ValueError):
    """cdk.json names an unknown environment or holds a bad value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JwtConfig(_Strict):
    """An external identity provider; without it the stack creates a Cognito user pool."""

    issuer: HttpUrl
    audience: list[str] = Field(min_length=1)


EngineName = Literal["responses", "chat", "assistants"]


class WebhookSubscriptionConfig(_Strict):
    """An outbound run webhook subscription (threadrunner.outbound_webhooks): every run event of these types goes
    to ``url`` as a Standard Webhooks request signed with the secret in ``secret_name``, a Secrets Manager secret
    the operator creates (``{"webhook_secret": "whsec_..."}``) and shares with the receiver."""

    url: WebhookUrl
    events: list[RunEventType] = Field(min_length=1)
    secret_name: str = Field(pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")

    @field_validator("events")
    @classmethod
    def _one_webhook_per_event(cls, events: list[RunEventType]) -> list[RunEventType]:
        if RunEventType.message_delta in events:
            # A chunk of the answer as the model writes it: live push only (one POST per chunk; the answer text).
            raise ValueError(f"{RunEventType.message_delta.value} is for live push only, not webhooks")
        if len(set(events)) != len(events):
            raise ValueError("lists an event type twice")
        return events


class EngineUpstreamConfig(_Strict):
    """An engine's own upstream, where it differs from the environment's (e.g. chat on a vLLM server)."""

    base_url: HttpUrl | None = None  # None: the environment's openai_base_url
    # A Secrets Manager secret an operator created with that upstream's key; None: the environment's secret.
    secret_name: str | None = Field(default=None, min_length=1)
    model: str | None = Field(default=None, min_length=1)  # the model that server runs


class FilesConfig(_Strict):
    """Uploads and generated files: limits (each a 4xx naming the field) and how long S3 keeps them."""

    max_file_bytes: int = Field(default=20 * 1024 * 1024, gt=0, le=512 * 1024 * 1024)
    allowed_types: list[str] = Field(
        default=[
            "text/csv",
            "text/plain",
            "text/markdown",
            "application/json",
            "application/pdf",
            "image/png",
            "image/jpeg",
        ],
        min_length=1,
    )
    max_files_per_run: int = Field(default=10, gt=0, le=50)
    user_quota_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    upload_url_seconds: int = Field(default=900, gt=0, le=7 * 24 * 3600)
    download_url_seconds: int = Field(default=3600, gt=0, le=7 * 24 * 3600)
    # The chat engine inlines a run's text files into its message, up to this many bytes per run (a 422 at
    # the API past it); keep it well inside the models' context budget (about four bytes a token).
    chat_inline_bytes: int = Field(default=256 * 1024, gt=0, le=4 * 1024 * 1024)
    # Upstream copies expire by themselves (Files API expires_after: 1 hour to 30 days); 0: never.
    upstream_file_days: int = Field(default=7, ge=0, le=30)
    uploads_expire_days: int = Field(default=2, gt=0)
    outputs_expire_days: int = Field(default=30, gt=0)

    @field_validator("allowed_types")
    @classmethod
    def _checkable(cls, types: list[str]) -> list[str]:
        unknown = sorted(set(types) - KNOWN_TYPES)
        if unknown:
            raise ValueError(f"staging cannot check {unknown}; known types: {sorted(KNOWN_TYPES)}")
        return types

    @model_validator(mode="after")
    def _quota_holds_a_file(self) -> FilesConfig:
        if self.user_quota_bytes < self.max_file_bytes:
            raise ValueError("user_quota_bytes must hold at least one file of max_file_bytes")
        return self


class ThrottleConfig(_Strict):
    """API Gateway throttling (token bucket, across all callers): a client past it gets 429 before any Lambda."""

    rate_limit: float = Field(gt=0, le=10_000)  # requests per second, sustained
    burst_limit: int = Field(gt=0, le=5_000)


class ApiThrottlingConfig(_Strict):
    """The stage's default and stricter limits on the routes that start work (a run, an upload)."""

    default: ThrottleConfig = ThrottleConfig(rate_limit=50, burst_limit=100)
    create_run: ThrottleConfig = ThrottleConfig(rate_limit=10, burst_limit=20)
    create_file: ThrottleConfig = ThrottleConfig(rate_limit=10, burst_limit=20)

    @model_validator(mode="after")
    def _routes_no_looser_than_default(self) -> ApiThrottlingConfig:
        for name in ("create_run", "create_file"):
            route: ThrottleConfig = getattr(self, name)
            if route.rate_limit > self.default.rate_limit or route.burst_limit > self.default.burst_limit:
                raise ValueError(f"{name} must be no looser than default")
        return self


class PriceConfig(_Strict):
    """USD per 1M tokens (threadrunner.pricing.ModelPrice)."""

    input: float = Field(ge=0)
    cached_input: float = Field(ge=0)
    output: float = Field(ge=0)


class EnvironmentConfig(_Strict):
    name: str
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    log_retention_days: int
    poll_first_seconds: int = Field(ge=0)
    poll_max_seconds: int = Field(ge=0)
    # Check run polls about every second inside one invocation while the model call is younger than this; the
    # Check run Lambda's timeout grows with it (infra/constructs/functions.py).
    check_wait_seconds: int = Field(default=40, ge=0, le=60)
    # How the workflow learns that a model call ended: "webhook" (the upstream's webhook resumes Wait for
    # model; register it after deploying: `threadrunner webhooks register`) or "poll" (Wait and Check run).
    completion: Completion = "poll"
    # completion "webhook": with no webhook this long after a model call started waiting, Check run polls.
    webhook_fallback_seconds: int = Field(default=60, gt=0, le=3600)
    run_deadline_seconds: int = Field(gt=0, lt=_MAX_RUN_DEADLINE_SECONDS)
    # Polls and tool calls bound a run's history events: the worst case must leave half of the 25,000
    # a Standard execution allows free (threadrunner/workflow/limits.py).
    max_polls: int = Field(gt=0, le=2000)
    max_tool_calls_per_run: int = Field(default=250, gt=0)
    # How long a run waits for the application (client tool outputs, approvals); then timed_out, action_expired.
    client_tool_timeout_seconds: int = Field(default=900, gt=0, le=86_400)
    # Characters in a user message (the API's ceiling is 400,000).
    max_message_chars: int = Field(default=400_000, gt=0, le=400_000)
    # A start the upstream keeps queued longer than this is cancelled and created again once.
    max_queued_seconds: int = Field(default=120, gt=0, le=3600)
    thread_max_age_hours: int = Field(gt=0)
    thread_ttl_days: int = Field(gt=0)
    model: str = Field(min_length=1)
    engine: EngineName
    openai_base_url: HttpUrl | None = None  # None: OpenAI itself
    engine_upstreams: dict[EngineName, EngineUpstreamConfig] = Field(default_factory=dict)
    # Where a run goes when its engine has an outage ("off": it fails), and for how long a failing engine is
    # skipped before one run tries it again.
    fallback_engine: EngineName | Literal["off"] = "off"
    breaker_cooling_seconds: int = Field(default=300, ge=0, le=86_400)
    # The chat engine's context budget per model, in tokens (others: the library's default).
    context_tokens: dict[str, Annotated[int, Field(gt=0)]] = Field(default_factory=dict)
    # A Secrets Manager secret holding the SQL tools' SQLAlchemy URL; None: the bundled SQLite sample.
    # Only the tool Lambdas may read it.
    database_secret_name: str | None = None
    allowed_origins: list[Origin]
    jwt: JwtConfig | None = None  # None: the stack creates a Cognito user pool
    # The pool's app client (only without jwt): authorization code grant with PKCE, back to these URLs only.
    oauth_callback_urls: list[RedirectUrl] = Field(default_factory=list)
    oauth_logout_urls: list[RedirectUrl] = Field(default_factory=list)
    removal_policy: Literal["destroy", "retain"]
    # When the sweep looks for expired threads TTL has not removed yet (an EventBridge schedule expression).
    sweep_schedule: str = Field(default="rate(1 day)", pattern=r"^(rate|cron)\(.+\)$")
    files: FilesConfig = FilesConfig()
    # Cost: prices added to / overriding threadrunner/prices.json; per-user daily budgets (None: none).
    prices: dict[str, PriceConfig] = Field(default_factory=dict)
    daily_token_budget: int | None = Field(default=None, gt=0)
    daily_cost_budget_usd: float | None = Field(default=None, gt=0)
    # Per-user limit on new runs (a 429 with Retry-After past it; None: none), and API Gateway's own throttling.
    runs_per_minute: int | None = Field(default=None, gt=0)
    api_throttling: ApiThrottlingConfig = ApiThrottlingConfig()
    # How long a repeat with the same Idempotency-Key gets the first answer back.
    idempotency_expires_hours: int = Field(default=24, gt=0, le=24 * 7)
    # Operators (the kill switch): members of this group, e.g. the Cognito group the stack creates.
    admin_group: str = Field(default="threadrunner-admins", pattern=r"^[\w+=,.@-]{1,128}$")
    # Alarms (monitoring construct): estimated spend per UTC day, and the share of runs that fail or time out.
    daily_cost_alarm_usd: float = Field(default=50, gt=0)
    failure_rate_alarm_percent: float = Field(default=20, gt=0, le=100)
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    # Outbound run webhooks (operators configure them; none by default).
    webhooks: list[WebhookSubscriptionConfig] = Field(default_factory=list, max_length=20)
    # The remote MCP servers assistants may name (threadrunner.hosted_tools): https URLs, and the Secrets
    # Manager secret holding each one's headers (only the model steps may read it). None by default.
    mcp_servers: list[AllowedMcpServer] = Field(default_factory=list, max_length=50)

    @field_validator("mcp_servers")
    @classmethod
    def _one_entry_per_label(cls, servers: list[AllowedMcpServer]) -> list[AllowedMcpServer]:
        labels = [server.server_label for server in servers]
        if twice := sorted({label for label in labels if labels.count(label) > 1}):
            raise ValueError(f"lists the server_label {', '.join(twice)} twice")
        return servers

    @property
    def hosted_tool_policy(self) -> HostedToolPolicy:
        """What the assistants' hosted tools are checked against at synth: the engine and the allow-list."""
        return HostedToolPolicy(engine=self.engine, mcp_servers=tuple(self.mcp_servers))

    @field_validator("log_retention_days")
    @classmethod
    def _known_retention(cls, days: int) -> int:
        if days not in _RETENTION:
            raise ValueError(f"CloudWatch Logs accepts only {sorted(_RETENTION)}")
        return days

    @model_validator(mode="after")
    def _consistent(self) -> EnvironmentConfig:
        if self.poll_max_seconds < self.poll_first_seconds:
            raise ValueError("poll_max_seconds must be at least poll_first_seconds")
        if self.thread_max_age_hours > self.thread_ttl_days * 24:
            raise ValueError("thread_max_age_hours must not outlive thread_ttl_days")
        if self.fallback_engine == self.engine:
            raise ValueError("fallback_engine must differ from engine (or be off)")
        if self.jwt is None and not self.oauth_callback_urls:
            raise ValueError(
                "oauth_callback_urls must name at least one URL for the stack's user pool client"
            )
        check_history_budget(self.max_polls, self.max_tool_calls_per_run)
        return self

    @model_validator(mode="after")
    def _priced_under_a_cost_budget(self) -> EnvironmentConfig:
        """A cost budget refuses runs on a model without a price (threadrunner.budgets): the environment's own
        models must have one, from prices.json or ``prices``."""
        if self.daily_cost_budget_usd is None:
            return self
        table = {
            **default_prices(),
            **{model: ModelPrice.model_validate(price.model_dump()) for model, price in self.prices.items()},
        }
        models = [
            self.model,
            *(upstream.model for upstream in self.engine_upstreams.values() if upstream.model),
        ]
        unpriced = sorted({model for model in models if price_for(model, table) is None})
        if unpriced:
            raise ValueError(
                f"daily_cost_budget_usd is set and {', '.join(unpriced)} has no price: list it in prices"
            )
        return self

    @property
    def is_production(self) -> bool:
        return self.removal_policy == "retain"

    @property
    def cdk_removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy.RETAIN if self.is_production else RemovalPolicy.DESTROY

    @property
    def retention(self) -> logs.RetentionDays:
        return _RETENTION[self.log_retention_days]


def load_environment(environments: Any, name: str) -> EnvironmentConfig:
    """Environment ``name`` from the ``environments`` context, or a ConfigError that says what is wrong."""
    if not isinstance(environments, dict) or not environments:
        raise ConfigError("cdk.json has no context.environments")
    if name not in environments:
        raise ConfigError(f"unknown environment {name!r}: cdk.json knows {', '.join(sorted(environments))}")
    raw = environments[name]
    if not isinstance(raw, dict):
        raise ConfigError(f"cdk.json environments.{name} must be an object")
    try:
        return EnvironmentConfig.model_validate({**raw, "name": name})
    except ValidationError as error:
        problems = "; ".join(
            ".".join(["environments", name, *(str(part) for part in issue["loc"])]) + f": {issue['msg']}"
            for issue in error.errors()
        )
        raise ConfigError(f"invalid cdk.json: {problems}") from None
