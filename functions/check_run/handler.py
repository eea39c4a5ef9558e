"""Check run: poll the upstream run, record tool calls and usage, choose the next wait."""

from threadrunner.models.workflow import StepInput
from threadrunner.workflow import steps
from threadrunner.workflow.handler import step_handler

lambda_handler = step_handler(steps.check_run, StepInput)
