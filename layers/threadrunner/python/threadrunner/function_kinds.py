"""What kind of Lambda this is: it decides what X-Ray traces (threadrunner.observability) and which
dependency layers the function gets (infra/bundling.py, infra/constructs/functions.py).

CDK sets ``THREADRUNNER_FUNCTION_KIND`` on every function. Patching a module for tracing imports it, so each
kind patches only the clients it calls, each when first about to be used (the AWS SDK with the first client),
not at INIT.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic_settings import BaseSettings, SettingsConfigDict

KIND_VARIABLE = "THREADRUNNER_FUNCTION_KIND"


class FunctionKind(StrEnum):
    api = "api"  # the HTTP API: DynamoDB, S3, Step Functions; never the model
    model = "model"  # the workflow steps that talk to the model (openai on first use)
    tools = "tools"  # a registered tool's own Lambda (the SQL tools: sqlglot, sqlalchemy, psycopg)
    # Cleanup, staging, repair: they talk to the model too (delete, upload, cancel), off the run's path.
    housekeeping = "housekeeping"
    # The run events' fan-out and outbound webhook delivery: DynamoDB Streams, SQS, AppSync Events, HTTPS.
    events = "events"


# X-Ray patches these (aws_xray_sdk.core.patch) when tracing is on, on first use (observability.trace_library,
# called by threadrunner.aws and tools/database.py). Auto-patching would import every library
# the SDK supports (sqlalchemy, psycopg, httpx...) in every function. The openai SDK talks over httpx2, which
# the X-Ray SDK does not patch: its calls show in the handler's segment, not as subsegments of their own.
TRACED_MODULES: dict[FunctionKind, tuple[str, ...]] = {
    FunctionKind.api: ("botocore",),
    FunctionKind.model: ("botocore",),
    # SQLAlchemy runs both databases' queries; X-Ray's psycopg patch would need psycopg_pool, never shipped.
    FunctionKind.tools: ("botocore", "sqlalchemy_core"),
    FunctionKind.housekeeping: ("botocore",),
    FunctionKind.events: ("botocore",),
}
# Without a kind (the local stack, tests, a function deployed before kinds existed): AWS calls only.
DEFAULT_TRACED_MODULES = ("botocore",)


class FunctionKindSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="THREADRUNNER_", frozen=True, extra="ignore")

    function_kind: FunctionKind | None = None


def traced_modules(kind: FunctionKind | None) -> tuple[str, ...]:
    return DEFAULT_TRACED_MODULES if kind is None else TRACED_MODULES[kind]
