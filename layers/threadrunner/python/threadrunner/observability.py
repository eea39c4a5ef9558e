"""Logger, tracer and metrics, created once and shared by every handler (same decorator order everywhere:
logger, tracer, metrics, then the parser)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from threadrunner.run_metrics import NAMESPACE

logger = Logger()
tracer = Tracer()
# The namespace from the library, not only the environment: whoever imports this first, metrics can flush.
metrics = Metrics(namespace=NAMESPACE)
