"""Submit tool outputs: hand every requested call's output back to the model."""

from threadrunner.models.workflow import StepInput
from threadrunner.workflow import tool_steps
from threadrunner.workflow.handler import step_handler

lambda_handler = step_handler(tool_steps.submit_tool_outputs, StepInput)
