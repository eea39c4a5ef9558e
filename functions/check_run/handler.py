"""Check run: poll the upstream run, record tool calls and usage, choose the next wait."""

from threadrunner.models.workflow import StepInput
from threadrunner.workflow import check_steps
from threadrunner.workflow.handler import step_handler

lambda_handler = step_handler(check_steps.check_run, StepInput)
