"""Run tool get_table_schema: one call the model asked for, its output stored in the ledger (no model access)."""

from threadrunner.models.workflow import RunToolInput
from threadrunner.workflow import steps
from threadrunner.workflow.handler import step_handler

lambda_handler = step_handler(steps.tool_runner("get_table_schema"), RunToolInput)
