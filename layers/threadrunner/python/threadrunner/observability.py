"""Logger, tracer and metrics, created once and shared by every handler (same decorator order everywhere:
logger, tracer, metrics, then the parser)."""

from __future__ import annotations

import logging
from functools import cache

from aws_lambda_powertools import Logger, Metrics, Tracer

from threadrunner.function_kinds import FunctionKindSettings, traced_modules
from threadrunner.run_metrics import NAMESPACE

# At DEBUG these libraries log whole requests and answers (botocore logs Secrets Manager's, the upstream key
# in it), and Lambda applies an environment's DEBUG application log level to every logger: they stop at INFO.
QUIET_LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3", "httpx", "httpcore", "openai")
for _library in QUIET_LIBRARIES:
    logging.getLogger(_library).setLevel(logging.INFO)

logger = Logger()
# Tracer() would patch every library X-Ray supports, importing sqlalchemy, psycopg and httpx into every
# function at INIT: each kind of function traces the clients it uses (threadrunner.function_kinds), and
# patches each when it is first about to be used (patching imports the library).
tracer = Tracer(auto_patch=False)
_TRACED = traced_modules(FunctionKindSettings().function_kind)
# The namespace from the library, not only the environment: whoever imports this first, metrics can flush.
metrics = Metrics(namespace=NAMESPACE)


@cache
def trace_library(module: str) -> None:
    """Patch ``module`` (an X-Ray SDK name: "botocore", "sqlalchemy_core") for tracing if this kind of function
    traces it; called by the code that first uses the library (threadrunner.aws), once per process. X-Ray
    patches the library's classes, so clients made before or after are traced alike."""
    if module in _TRACED:
        tracer.patch(modules=(module,))
