"""Submit tool outputs: hand every requested call's output back to the model."""

from threadrunner.models.workflow import StepInput
from threadrunner.workflow import steps
from threadrunner.workflow.handler import step_handler

lambda_handler = step_handler(steps.submit_tool_outputs, StepInput)
