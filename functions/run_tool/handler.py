"""Run tool: run one tool call the model asked for and store its output in the ledger (no model access)."""

from threadrunner.models.workflow import RunToolInput
from threadrunner.workflow import steps
from threadrunner.workflow.handler import step_handler

lambda_handler = step_handler(steps.run_tool, RunToolInput)
