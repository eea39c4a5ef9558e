"""Logger, tracer and metrics, created once and shared by every handler (same decorator order everywhere:
logger, tracer, metrics, then the parser)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
