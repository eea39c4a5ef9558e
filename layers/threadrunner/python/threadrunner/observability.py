"""Logger, tracer and metrics, created once and shared by every handler (same decorator order everywhere:
logger, tracer, metrics, then the parser)."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics, Tracer

from threadrunner.run_metrics import NAMESPACE

# At DEBUG these libraries log whole requests and answers (botocore logs Secrets Manager's, the upstream key
# in it), and Lambda applies an environment's DEBUG application log level to every logger: they stop at INFO.
QUIET_LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3", "httpx", "httpcore", "openai")
for _library in QUIET_LIBRARIES:
    logging.getLogger(_library).setLevel(logging.INFO)

logger = Logger()
tracer = Tracer()
# The namespace from the library, not only the environment: whoever imports this first, metrics can flush.
metrics = Metrics(namespace=NAMESPACE)
