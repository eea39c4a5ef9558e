"""Run tool: one call the model asked for, run by this Lambda's own tool (THREADRUNNER_TOOL_NAME, one Lambda
per registered tool), its output stored in the ledger (no model access)."""

from threadrunner.tools.tool_lambda import tool_lambda_handler

lambda_handler = tool_lambda_handler()
